//! fine-drums-backends, called directly: names, defaults, and each backend built and used.

use fine_drums_backends::{Error, Kind, Settings};
use fine_drums_llm::CompletionRequest;

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().build().expect("runtime").block_on(f)
}

#[test]
fn every_kind_is_named_and_local_still_names_the_markov_model() {
    for kind in Kind::ALL {
        assert_eq!(kind.as_str().parse::<Kind>().expect("a name"), kind);
        assert_eq!(kind.to_string(), kind.as_str());
    }
    assert_eq!("local".parse::<Kind>().expect("the old name"), Kind::Markov);
    let err = "davinci".parse::<Kind>().expect_err("no such backend");
    assert!(matches!(&err, Error::UnknownKind { name } if name == "davinci"), "{err}");
    assert!(err.to_string().contains("gpt, markov, lora or openai"), "{err}");
    assert_eq!(Kind::default(), Kind::Gpt, "the drum GPT is the default");
    assert!(Kind::Markov.is_built() && Kind::Markov.feature().is_none());
    assert!(Kind::built().any(|k| k == Kind::Markov));
}

#[test]
fn a_built_out_backend_names_its_feature() {
    for kind in Kind::ALL.into_iter().filter(|k| !k.is_built()) {
        let err = Settings::of(kind).completer(None).expect_err("not built");
        let feature = kind.feature().expect("only featured kinds can be left out");
        assert!(matches!(err, Error::NotBuilt { kind: k, .. } if k == kind.as_str()));
        assert!(err.to_string().contains(feature), "{err}");
    }
}

#[test]
fn lora_and_openai_need_a_model_to_continue_with() {
    for kind in [Kind::Lora, Kind::OpenAi] {
        let err = Settings::of(kind).model_name().expect_err("no default");
        assert!(matches!(err, Error::Setting { kind: k, .. } if k == kind.as_str()), "{err}");
        assert!(err.to_string().contains("model"), "{err}");
    }
}

#[test]
fn the_markov_model_continues_the_prompt_the_same_way_for_a_seed() {
    let mut settings = Settings::of(Kind::Markov);
    settings.top_k = 4;
    let completer = settings.completer(None).expect("the Markov backend");
    assert_eq!(completer.model, "local");
    assert!(completer.template.is_none(), "the prompt's own statistics bring no template");
    assert_eq!(settings.sampling(), (1.0, 1.0));
    let bar = "Kh..h. Sh..h. Kh..Kh. Sh..h.\n";
    let prompt = format!("#beat 4/4 16\n{}\n>>>", bar.repeat(4).trim_end());
    let mut request = CompletionRequest::new(&completer.model, prompt, 400);
    request.seed = Some(11);
    let a = block_on(completer.backend.complete(&request)).expect("a continuation");
    let b = block_on(completer.backend.complete(&request)).expect("a continuation");
    assert_eq!(a.choices[0].text, b.choices[0].text);
    assert!(a.choices[0].text.lines().any(|l| l.contains('K')), "{:?}", a.choices[0].text);
}

#[test]
fn a_markov_model_file_that_is_not_one_is_an_error_that_names_it() {
    let dir = std::env::temp_dir().join(format!("fine-drums-backends-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    let path = dir.join("bad.fdlm");
    std::fs::write(&path, b"not a model").expect("a file");
    let mut settings = Settings::of(Kind::Markov);
    settings.model = Some(path.display().to_string());
    let err = settings.completer(None).expect_err("not a model");
    assert!(err.to_string().contains("bad.fdlm"), "{err}");
    let missing = dir.join("missing.fdlm");
    settings.model = Some(missing.display().to_string());
    let err = settings.completer(None).expect_err("no file");
    assert!(err.to_string().contains("missing.fdlm"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn each_kind_has_a_base_to_fine_tune_but_lora() {
    assert_eq!(Settings::of(Kind::Markov).base_model().expect("a base"), "local");
    assert!(matches!(Settings::of(Kind::Lora).base_model(), Err(Error::Setting { .. })));
    let mut named = Settings::of(Kind::Lora);
    named.model = Some("/models/SmolLM2-135M".into());
    assert_eq!(named.base_model().expect("named"), "/models/SmolLM2-135M");
    let markov = Settings::of(Kind::Markov).fine_tuner(&Default::default());
    assert!(markov.is_ok());
}

#[cfg(feature = "gpt")]
#[test]
fn the_drum_gpt_is_the_built_in_model_with_its_own_template_and_sampling() {
    let settings = Settings::default();
    let completer = settings.completer(None).expect("the built-in drum GPT");
    assert_eq!(completer.model, fine_drums_gpt::EMBEDDED);
    assert!(completer.template.is_some());
    assert_eq!(settings.sampling(), (fine_drums_gpt::TEMPERATURE, fine_drums_gpt::TOP_P));
    assert_eq!(settings.base_model().expect("a preset"), fine_drums_gpt::BASE_MODEL);
    let mut missing = Settings::default();
    missing.model = Some("/no/such/model-folder".into());
    let err = missing.completer(None).expect_err("no folder");
    assert!(matches!(err, Error::Gpt { .. }), "{err}");
    assert!(err.to_string().contains("/no/such/model-folder"), "{err}");
    assert!(std::error::Error::source(&err).is_some(), "the drum GPT's error is kept");
}

#[cfg(feature = "lora")]
#[test]
fn a_lora_folder_that_is_not_one_is_an_error_that_names_it() {
    let mut settings = Settings::of(Kind::Lora);
    settings.model = Some("/no/such/adapter".into());
    let err = settings.completer(None).expect_err("no folder");
    assert!(matches!(err, Error::Lora { .. }), "{err}");
    assert!(err.to_string().contains("/no/such/adapter"), "{err}");
    let Err(err) = settings.fine_tuner(&Default::default()) else { panic!("no base folder") };
    assert!(err.to_string().contains("/no/such/adapter"), "{err}");
}

#[cfg(feature = "openai")]
#[test]
fn openai_fine_tunes_a_chat_model_by_default() {
    assert_eq!(
        Settings::of(Kind::OpenAi).base_model().expect("a default"),
        fine_drums_openai::CHAT_FINE_TUNABLE[0]
    );
}
