//! What a training run reports as it goes: the events that the drum GPT and LoRA trainers send, and that jobs record and progress bars show.

/// What training reports as it goes.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// Training starts (or resumes) with a model of this many parameters and tokens.
    Started {
        /// Trainable numbers.
        parameters: usize,
        /// Tokens in the vocabulary.
        vocabulary: usize,
        /// Training tokens per epoch.
        tokens: usize,
        /// Steps per epoch.
        steps_per_epoch: u64,
        /// The step it starts from (0, or a checkpoint's).
        from_step: u64,
    },
    /// One optimiser step.
    Step {
        /// Its epoch, from 1.
        epoch: u32,
        /// The step, from 1.
        step: u64,
        /// The training loss of its batch, per token.
        loss: f64,
        /// Training tokens per second over the epoch so far.
        tokens_per_second: f64,
    },
    /// An epoch ended.
    Epoch {
        /// The epoch, from 1.
        epoch: u32,
        /// The mean training loss over it, per token.
        train_loss: f64,
        /// The validation loss, per token (NaN without validation examples).
        validation_loss: f64,
        /// Whether it is the best so far (by the training loss without validation examples).
        best: bool,
    },
    /// Training ended.
    Finished {
        /// Why: the last epoch, or early stopping.
        reason: String,
        /// The best validation loss, per token (the best training loss without validation
        /// examples).
        validation_loss: f64,
    },
}
