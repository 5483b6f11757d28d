//! Integration tests of fine-drums-train, built as one binary.

use std::collections::HashMap;
use std::path::PathBuf;

use candle_core::{Device, Tensor};
use fine_drums_train::checkpoint::{self, CHECKSUMS, Files, OPTIMIZER};
use fine_drums_train::kernels::{self, RowKernel};
use fine_drums_train::schedule::lr_at;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fine-drums-train-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn a_checkpoint_reads_back_and_names_a_damaged_file() {
    let dir = scratch("damaged");
    checkpoint::save_files(&dir, &[("a.json", b"[1,2,3]".to_vec()), (OPTIMIZER, vec![7; 64])])
        .expect("saved");
    let files = Files::open(&dir).expect("opens").expect("a checkpoint");
    assert!(files.contains(OPTIMIZER) && !files.contains("b.json"));
    assert_eq!(files.read("a.json").expect("a.json"), b"[1,2,3]");
    // Cut short, then corrupted: each named.
    std::fs::write(dir.join("a.json"), b"[1,2").expect("cut");
    let e = files.read("a.json").expect_err("cut short").to_string();
    assert!(e.contains("a.json") && e.contains("cut short"), "{e}");
    std::fs::write(dir.join("a.json"), b"[1,2,4]").expect("corrupt");
    let e = files.read("a.json").expect_err("corrupted").to_string();
    assert!(e.contains("checksum does not match"), "{e}");
    // A save without the optimiser's state removes the old one.
    checkpoint::save_files(&dir, &[("a.json", b"[]".to_vec())]).expect("saved again");
    assert!(!dir.join(OPTIMIZER).exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_save_cut_short_leaves_the_old_checkpoint_or_the_new_one() {
    let dir = scratch("killed");
    checkpoint::save_files(&dir, &[("a.json", b"old".to_vec())]).expect("saved");
    let staging = dir
        .with_file_name(format!(".{}.partial", dir.file_name().expect("a name").to_string_lossy()));
    // Killed while writing the staging folder (no checksums yet): the old checkpoint stays.
    std::fs::create_dir_all(&staging).expect("staging");
    std::fs::write(staging.join("a.json"), b"new").expect("half a save");
    let files = Files::open(&dir).expect("opens").expect("a checkpoint");
    assert_eq!(files.read("a.json").expect("old"), b"old");
    assert!(!staging.exists());
    // Killed while moving (the staging folder complete): the next open finishes the move.
    checkpoint::save_files(&staging.with_file_name("whole"), &[("a.json", b"new".to_vec())])
        .expect("a complete save elsewhere");
    std::fs::rename(staging.with_file_name("whole"), &staging).expect("as a staging folder");
    assert!(staging.join(CHECKSUMS).is_file());
    let files = Files::open(&dir).expect("opens").expect("a checkpoint");
    assert_eq!(files.read("a.json").expect("new"), b"new");
    assert!(!staging.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn safetensors_bytes_read_back_as_the_same_tensors() {
    let t = Tensor::arange(0f32, 6.0, &Device::Cpu).and_then(|t| t.reshape((2, 3))).expect("t");
    let bytes = checkpoint::safetensors_bytes(&HashMap::from([("w".to_string(), t.clone())]))
        .expect("bytes");
    let back = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu).expect("reads");
    let w = back["w"].to_vec2::<f32>().expect("2-D");
    assert_eq!(w, t.to_vec2::<f32>().expect("2-D"));
}

#[test]
fn exp_is_within_3e_7_of_the_c_librarys() {
    for i in -870_000..=880_000 {
        let x = i as f32 / 10_000.0;
        let (a, b) = (kernels::exp(x), x.exp());
        assert!((a - b).abs() <= 3e-7 * b, "exp({x}) = {a}, not {b}");
    }
    assert!(kernels::exp(f32::NAN).is_nan());
    assert_eq!(kernels::exp(-1e9), kernels::exp(-87.0));
}

/// Each row's sum, max and log-sum-exp in lanes against the same in one running total, and
/// a kernel over rows in parallel against the same rows one by one.
#[test]
fn the_kernels_sums_are_the_plain_ones_and_rows_run_alike_in_parallel() {
    let row =
        |n: usize| -> Vec<f32> { (0..n).map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0).collect() };
    for n in [1, 15, 16, 17, 100, 1400] {
        let x = row(n);
        let plain = x.iter().sum::<f32>();
        assert!((kernels::sum(&x) - plain).abs() <= 1e-5 * x.iter().map(|v| v.abs()).sum::<f32>());
        assert_eq!(kernels::max(&x), x.iter().copied().fold(f32::NEG_INFINITY, f32::max));
        let top = kernels::max(&x);
        let lse = top + x.iter().map(|v| (v - top).exp()).sum::<f32>().ln();
        assert!((kernels::log_sum_exp(&x) - lse).abs() <= 1e-5 * lse.abs().max(1.0), "{n}");
        let dot = kernels::sum_of3(&x, &x, &x, |a, b, c| a * b * c);
        let plain = x.iter().map(|v| v * v * v).sum::<f32>();
        assert!((dot - plain).abs() <= 1e-4 * x.iter().map(|v| (v * v * v).abs()).sum::<f32>());
    }
    assert_eq!(kernels::max(&[]), f32::NEG_INFINITY);

    /// Row i scaled by i + 1.
    struct Scale;
    impl RowKernel for Scale {
        #[inline(always)]
        fn row(&self, i: usize, out: &mut [f32]) {
            out.iter_mut().for_each(|v| *v *= (i + 1) as f32);
        }
    }
    // Large enough to be shared out, with a short last row left alone.
    let (w, rows) = (300, 200);
    let mut x = row(w * rows + 7);
    let want: Vec<f32> = x
        .iter()
        .enumerate()
        .map(|(j, v)| if j < w * rows { v * (j / w + 1) as f32 } else { *v })
        .collect();
    kernels::each_row(&mut x, w, &Scale);
    assert_eq!(x, want);
    let lse = kernels::log_sum_exps(&x[..w * rows], w);
    assert_eq!(lse.len(), rows);
    assert_eq!(lse[3], kernels::log_sum_exp(&x[3 * w..4 * w]));
}

#[test]
fn the_learning_rate_warms_up_then_decays_to_a_tenth() {
    let (peak, warmup, total) = (3e-3, 10, 110);
    let lrs: Vec<f64> = (0..=total + 5).map(|s| lr_at(peak, warmup, s, total)).collect();
    assert!(lrs[..10].windows(2).all(|w| w[0] < w[1]), "rises during the warm-up");
    assert!((lrs[9] - peak).abs() < 1e-12 && (lrs[10] - peak).abs() < 1e-12);
    assert!(lrs[10..=110].windows(2).all(|w| w[0] >= w[1]), "falls after it");
    assert!(lrs[110..].iter().all(|lr| (lr - peak / 10.0).abs() < 1e-12), "then stays");
    // No warm-up and a run of one step are no division by zero.
    assert!((lr_at(peak, 0, 0, 0) - peak).abs() < 1e-12);
}

mod jobs {
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use fine_drums_llm::{JobRequest, JobStatus, Upload};
    use fine_drums_train::jobs::{Ended, Fields, Hyperparameters, Runner, apply};

    /// Waits (up to 10 s) until job `id` has ended its work.
    fn settle(runner: &Runner<String>, id: &str) {
        for _ in 0..1000 {
            if !runner.is_training(id) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("job {id} still at work after 10 s");
    }

    #[test]
    fn a_job_that_ends_registers_its_model_and_succeeds() {
        let runner = Runner::<String>::new("test");
        let file = runner.upload(&Upload::new("train.jsonl", b"{}".to_vec()));
        assert_eq!(runner.file(&file).expect("the upload").name, "train.jsonl");
        let id = runner.next_job_id();
        let job = runner.spawn(&id, "base", "model-1".into(), |work| {
            work.record("info", "trained".into(), None);
            Ok(format!("trained by {}", work.id()))
        });
        assert_eq!(job.status, JobStatus::Running);
        settle(&runner, &id);
        let job = runner.job(&id).expect("the job");
        assert_eq!(
            (job.status, job.fine_tuned_model.as_deref()),
            (JobStatus::Succeeded, Some("model-1"))
        );
        assert_eq!(
            runner.get_model("model-1").as_deref().map(String::as_str),
            Some(&*format!("trained by {id}"))
        );
        let events = runner.events(&id, None).expect("events");
        assert_eq!(events.len(), 1);
        assert!(runner.events(&id, Some(&events[0].id)).expect("none after").is_empty());
        // Ended jobs cannot be cancelled; unknown ones are named.
        assert!(runner.cancel(&id).expect_err("ended").to_string().contains("already ended"));
        assert!(runner.job("ftjob-none").expect_err("unknown").to_string().contains("ftjob-none"));
    }

    #[test]
    fn a_cancelled_job_stops_and_stays_cancelled_and_a_failure_is_kept() {
        let runner = Runner::<String>::new("test");
        let id = runner.next_job_id();
        runner.spawn(&id, "base", "never".into(), |work| {
            let stop = work.stop_flag();
            for step in 0..1000 {
                if stop.load(Ordering::Relaxed) {
                    return Err(Ended::Stopped { step });
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Ok("finished anyway".into())
        });
        assert_eq!(runner.cancel(&id).expect("cancelled").status, JobStatus::Cancelled);
        settle(&runner, &id);
        assert_eq!(runner.job(&id).expect("the job").status, JobStatus::Cancelled);
        assert!(runner.get_model("never").is_none());
        let events = runner.events(&id, None).expect("events");
        assert!(events.iter().any(|e| e.message.starts_with("cancelled at step")), "{events:?}");

        let failing = runner.next_job_id();
        runner.spawn(&failing, "base", "none".into(), |_| Err(Ended::Failed("no data".into())));
        settle(&runner, &failing);
        let job = runner.job(&failing).expect("the job");
        assert_eq!((job.status, job.error.as_deref()), (JobStatus::Failed, Some("no data")));
    }

    #[test]
    fn a_model_loads_once_and_requests_change_only_what_they_ask() {
        let runner = Runner::<String>::new("test");
        let mut loads = 0;
        for _ in 0..3 {
            let m = runner
                .model_or_load("m", || {
                    loads += 1;
                    Ok::<_, std::io::Error>("loaded".to_string())
                })
                .expect("a model");
            assert_eq!(m.as_str(), "loaded");
        }
        assert_eq!(loads, 1);
        let failed = runner.model_or_load("bad", || Err(std::io::Error::other("no such folder")));
        assert!(failed.is_err() && runner.get_model("bad").is_none());

        #[derive(Default)]
        struct Options(u32, usize, f64, u64);
        impl Hyperparameters for Options {
            fn fields(&mut self) -> Fields<'_> {
                Fields::new(&mut self.0, &mut self.1, &mut self.2, &mut self.3)
            }
        }
        let mut o = Options(4, 16, 1e-3, 0);
        let mut request = JobRequest::new("base", "file-1");
        request.learning_rate_multiplier = Some(2.0);
        request.seed = Some(9);
        apply(&request, &mut o);
        assert_eq!((o.0, o.1, o.3), (4, 16, 9));
        assert!((o.2 - 2e-3).abs() < 1e-15);
    }
}
