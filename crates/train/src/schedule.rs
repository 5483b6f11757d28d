//! The learning-rate schedule: a linear warm-up, then a cosine decay to a tenth of the peak.

/// The learning rate at optimiser step `step` (from 0) of `total`: it rises linearly over the
/// first `warmup` steps to `peak`, then falls along a half cosine to `peak / 10` at `total`,
/// and stays there.
///
/// ```
/// use fine_drums_train::schedule::lr_at;
///
/// let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
/// assert!(close(lr_at(1e-3, 10, 4, 100), 5e-4)); // step 5 of a 10-step warm-up
/// assert!(close(lr_at(1e-3, 10, 10, 100), 1e-3)); // the peak
/// assert!(close(lr_at(1e-3, 10, 100, 100), 1e-4)); // the floor
/// ```
pub fn lr_at(peak: f64, warmup: u64, step: u64, total: u64) -> f64 {
    if step < warmup {
        return peak * (step + 1) as f64 / warmup as f64;
    }
    let progress = (step - warmup) as f64 / total.saturating_sub(warmup).max(1) as f64;
    peak * (0.1 + 0.9 * 0.5 * (1.0 + (std::f64::consts::PI * progress.min(1.0)).cos()))
}
