//! Small newtypes for MIDI's ranges: every value they hold is valid.

use crate::error::{Error, Result};

macro_rules! newtype {
    ($(#[$doc:meta])* $name:ident, $min:expr, $max:expr, $what:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(u8);

        impl $name {
            /// The smallest value.
            pub const MIN: $name = $name($min);
            /// The largest value.
            pub const MAX: $name = $name($max);

            /// Makes a value, clamping `v` into range.
            // `Pitch` starts at 0, where the lower check is always false.
            #[allow(unused_comparisons)]
            pub const fn new(v: u8) -> $name {
                if v < $min {
                    $name($min)
                } else if v > $max {
                    $name($max)
                } else {
                    $name(v)
                }
            }

            /// The value as a plain integer.
            pub const fn as_int(self) -> u8 {
                self.0
            }
        }

        impl TryFrom<u8> for $name {
            type Error = Error;

            fn try_from(v: u8) -> Result<$name> {
                if ($min..=$max).contains(&v) {
                    Ok($name(v))
                } else {
                    Err(Error::invalid($what, format!("{v} is outside {}..={}", $min, $max)))
                }
            }
        }

        impl From<$name> for u8 {
            fn from(v: $name) -> u8 {
                v.0
            }
        }
    };
}

newtype!(
    /// A MIDI note number, 0 to 127 (in General MIDI drums, the instrument).
    Pitch,
    0,
    127,
    "pitch"
);
newtype!(
    /// The velocity of a hit, 1 to 127 (a note-on with velocity 0 is a note-off, not a hit).
    Velocity,
    1,
    127,
    "velocity"
);
newtype!(
    /// A MIDI channel as musicians count them, 1 to 16. Drums are on channel 10 by convention.
    Channel,
    1,
    16,
    "channel"
);

impl Channel {
    /// General MIDI's drum channel, 10.
    pub const DRUMS: Channel = Channel(10);

    /// The channel as MIDI bytes number it, 0 to 15.
    pub const fn index(self) -> u8 {
        self.0 - 1
    }
}

impl Default for Channel {
    fn default() -> Channel {
        Channel::DRUMS
    }
}

/// A channel is stored as its number, 1 to 16.
#[cfg(feature = "serde")]
impl serde::Serialize for Channel {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_u8(self.as_int())
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Channel {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Channel, D::Error> {
        Channel::try_from(u8::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}
