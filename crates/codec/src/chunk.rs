//! The chunks of a Standard MIDI File, as far as the codec frames them itself: the truncation
//! check midly forgives, and the header's timing bytes.

/// One chunk at the start of some bytes.
struct Chunk<'a> {
    id: &'a [u8],
    /// The length its header declares.
    declared: usize,
    /// Its data, cut short where the bytes end.
    data: &'a [u8],
    /// The bytes after it.
    rest: &'a [u8],
}

/// The chunk `raw` starts with (SMF chunks give their length big-endian, RIFF chunks
/// little-endian), or `None` if `raw` ends inside its 8-byte header.
fn chunk(raw: &[u8], little_endian: bool) -> Option<Chunk<'_>> {
    let len: [u8; 4] = raw.get(4..8)?.try_into().ok()?;
    let declared = if little_endian { u32::from_le_bytes(len) } else { u32::from_be_bytes(len) };
    let declared = declared as usize;
    let (data, rest) = raw[8..].split_at(declared.min(raw.len() - 8));
    Some(Chunk { id: &raw[..4], declared, data, rest })
}

/// A chunk whose declared length runs past the end of the file: where, and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub(crate) struct Truncated {
    /// The chunk's index: 0 for the header, then the tracks.
    pub index: usize,
    /// The chunk's first byte in the file.
    pub byte: usize,
    /// What is wrong.
    pub message: String,
}

/// How a Standard MIDI File's chunks are framed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Framing {
    /// Where the bytes after the last track the header declares start, if they do not frame
    /// as chunks: junk that players ignore (a single stray byte, most often).
    pub trailing: Option<usize>,
}

/// Checks that every chunk's declared length fits in the file, which midly forgives. Bytes
/// that do not frame as a chunk after the header's last track are not a truncation: they are
/// reported in [`Framing::trailing`].
pub(crate) fn check_chunks(bytes: &[u8]) -> Result<Framing, Truncated> {
    // The number of tracks the header declares (midly reads no more than that).
    let declared =
        bytes.get(10..12).map_or(usize::MAX, |n| usize::from(u16::from_be_bytes([n[0], n[1]])));
    let mut raw = bytes;
    let (mut index, mut tracks) = (0usize, 0usize);
    while !raw.is_empty() {
        let byte = bytes.len() - raw.len();
        let after_last = index > 0 && tracks >= declared;
        let Some(c) = chunk(raw, false) else {
            if after_last {
                return Ok(Framing { trailing: Some(byte) });
            }
            let message = "file ends inside a chunk header".to_string();
            return Err(Truncated { index, byte, message });
        };
        if c.data.len() < c.declared {
            if after_last {
                return Ok(Framing { trailing: Some(byte) });
            }
            let message = format!(
                "chunk at byte {byte} declares {} bytes but only {} remain: the file is truncated",
                c.declared,
                c.data.len()
            );
            return Err(Truncated { index, byte, message });
        }
        if index > 0 && minus_128_fps(c.id, c.data) {
            return Err(Truncated { index, byte, message: MINUS_128.into() });
        }
        tracks += usize::from(c.id == b"MTrk");
        raw = c.rest;
        index += 1;
    }
    Ok(Framing { trailing: None })
}

/// What a header chunk with SMPTE timing at -128 frames per second is: midly negates the
/// byte, which overflows (a panic where overflow is checked). No rate is -128 fps.
pub(crate) const MINUS_128: &str =
    "SMPTE timing at -128 frames per second, which is not a frame rate";

/// Whether a chunk is a header whose timing is SMPTE at -128 frames per second.
fn minus_128_fps(id: &[u8], data: &[u8]) -> bool {
    id == b"MThd" && data.get(4) == Some(&0x80)
}

/// Whether any chunk of a RIFF (RMID) file's `data` chunk after its first is such a header
/// (midly reads every chunk there as it looks for tracks).
pub(crate) fn riff_has_minus_128_header(bytes: &[u8]) -> bool {
    bytes.windows(13).skip(1).any(|w| minus_128_fps(&w[..4], &w[8..]))
}

/// The two timing bytes of a file's header, found where midly looks for them: the first
/// `MThd` chunk of the file or of a RIFF (RMID) file's `data` chunk, unknown chunks skipped.
pub(crate) fn header_timing(bytes: &[u8]) -> Option<[u8; 2]> {
    let mut raw = bytes;
    if bytes.starts_with(b"RIFF") {
        let mut rest = chunk(bytes, true)?.data.get(4..)?;
        raw = loop {
            let c = chunk(rest, true)?;
            if c.id == b"data" {
                break c.data;
            }
            // RIFF chunks of odd length carry a pad byte.
            rest = if c.data.len() % 2 == 1 { c.rest.get(1..).unwrap_or(c.rest) } else { c.rest };
        };
    }
    loop {
        let c = chunk(raw, false)?;
        match c.id {
            b"MThd" => return c.data.get(4..6)?.try_into().ok(),
            b"MTrk" => return None,
            _ => raw = c.rest,
        }
    }
}
