//! The text path end to end: chat template → tokenizer → GPU forward pass → sampler → streamed
//! text. Greedy chat against llama.cpp's `create_chat_completion(temperature=0)` on the real
//! model; sampling, stop strings, cancellation and KV prefix reuse on the tiny model.

mod support;

use std::path::Path;

use qwen_webgpu::engine::EngineOptions;
use qwen_webgpu::generation::{CancelFlag, Completion, GenerateParams, GenerationError, Session};
use qwen_webgpu::gpu::GpuOptions;
use qwen_webgpu::native::{load_engine, open_model};
use qwen_webgpu::protocol::{ChatMessage, FinishReason};
use qwen_webgpu::sampling::SamplingParams;
use serde_json::Value;

const IM_END: u32 = 151645;

fn session(path: &Path, context_length: usize) -> Session {
    let (model, _) = open_model(path).unwrap();
    let engine = load_engine(
        path,
        &GpuOptions::default(),
        &EngineOptions {
            context_length,
            prefill_chunk: 16,
            ..EngineOptions::default()
        },
    )
    .unwrap();
    Session::new(engine, &model).unwrap()
}

fn run(
    s: &mut Session,
    prompt: &[u32],
    params: &GenerateParams,
    cancel: &CancelFlag,
) -> (Completion, String) {
    let mut streamed = String::new();
    let done =
        pollster::block_on(s.generate(prompt, params, cancel, &mut |t| streamed.push_str(t)))
            .unwrap();
    (done, streamed)
}

fn greedy(max_tokens: usize) -> GenerateParams {
    GenerateParams {
        max_tokens,
        ..GenerateParams::default()
    }
}

fn sampled(seed: u64, max_tokens: usize) -> GenerateParams {
    GenerateParams {
        sampling: SamplingParams {
            temperature: 1.0,
            top_p: 0.9,
            top_k: 50,
            seed: Some(seed),
            ..SamplingParams::default()
        },
        max_tokens,
        ..GenerateParams::default()
    }
}

fn user(text: &str) -> Vec<ChatMessage> {
    vec![ChatMessage::user(text)]
}

/// Our logits differ from llama.cpp's CPU kernels (which quantize activations to 8 bits) by up
/// to ~0.25; where llama.cpp's top-two margin is smaller, either token is a faithful greedy
/// choice, so the comparison runs up to the first such position.
const MARGIN: f64 = 0.3;

#[test]
fn greedy_chat_equals_llama_cpp() {
    let path = support::real_model();
    let doc: Value = serde_json::from_str(
        &std::fs::read_to_string(
            support::repo_root().join("tests/fixtures/golden/chat_completion.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let mut s = session(&path, 256);
    let mut full_matches = 0;
    for case in doc["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let messages: Vec<ChatMessage> = serde_json::from_value(case["messages"].clone()).unwrap();
        let want_ids: Vec<u32> = serde_json::from_value(case["generated_ids"].clone()).unwrap();
        let margins: Vec<f64> = serde_json::from_value(case["margins"].clone()).unwrap();
        let confident = margins
            .iter()
            .position(|&m| m < MARGIN)
            .unwrap_or(margins.len());
        if confident == 0 {
            continue;
        }
        let whole = confident == want_ids.len();
        let params = greedy(if whole { 64 } else { confident });
        let mut streamed = String::new();
        let done =
            pollster::block_on(
                s.chat(&messages, None, &params, &CancelFlag::new(), &mut |t| {
                    streamed.push_str(t)
                }),
            )
            .unwrap();
        assert_eq!(done.generated_ids[..], want_ids[..confident], "{name}");
        assert_eq!(streamed, done.text, "{name}");
        if whole {
            full_matches += 1;
            assert_eq!(done.text, case["text"].as_str().unwrap(), "{name}");
            assert_eq!(done.finish_reason, FinishReason::Stop, "{name}");
            assert_eq!(
                done.usage.completion_tokens as u64,
                case["usage"]["completion_tokens"].as_u64().unwrap(),
                "{name}"
            );
        } else {
            assert_eq!(done.finish_reason, FinishReason::Length, "{name}");
            let want_text = s.tokenizer().decode(&want_ids[..confident]).unwrap();
            assert_eq!(done.text, want_text, "{name}");
        }
        assert_eq!(
            done.usage.prompt_tokens as u64,
            case["usage"]["prompt_tokens"].as_u64().unwrap()
        );
    }
    assert!(full_matches >= 1, "no case was compared whole");
}

#[test]
fn tiny_model_generation_behaviour() {
    let path = support::tiny_model();
    let mut s = session(&path, 128);
    let cancel = CancelFlag::new();
    let prompt = s
        .chat_prompt(&user("Write a story about a fox."), None)
        .unwrap();

    // Greedy, through the 8-byte argmax read-back.
    let (base, streamed) = run(&mut s, &prompt, &greedy(12), &cancel);
    assert_eq!(base.finish_reason, FinishReason::Length);
    assert_eq!(base.generated_ids.len(), 12);
    assert_eq!(streamed, base.text);
    assert_eq!(
        base.text,
        s.tokenizer().decode(&base.generated_ids).unwrap()
    );

    // Temperature 0 with the full logits on the CPU picks exactly the same tokens.
    let via_logits = GenerateParams {
        sampling: SamplingParams {
            logit_bias: vec![(0, 0.0)],
            ..SamplingParams::default()
        },
        ..greedy(12)
    };
    let (cpu, _) = run(&mut s, &prompt, &via_logits, &cancel);
    assert_eq!(cpu.generated_ids, base.generated_ids);

    // The same seed gives the same tokens; another seed other tokens.
    let (a, _) = run(&mut s, &prompt, &sampled(42, 10), &cancel);
    let (b, _) = run(&mut s, &prompt, &sampled(42, 10), &cancel);
    let (c, _) = run(&mut s, &prompt, &sampled(43, 10), &cancel);
    assert_eq!(a.generated_ids, b.generated_ids);
    assert_ne!(a.generated_ids, c.generated_ids);

    // A stop string spanning two tokens ends generation and is cut from the text.
    let pieces: Vec<String> = base
        .generated_ids
        .iter()
        .map(|&id| s.tokenizer().decode(&[id]).unwrap())
        .collect();
    let k = (3..pieces.len() - 1)
        .find(|&i| {
            !pieces[i].is_empty()
                && !pieces[i + 1].is_empty()
                && !pieces[i].contains('\u{fffd}')
                && !pieces[i + 1].contains('\u{fffd}')
        })
        .expect("two adjacent whole-character tokens");
    let last_char = pieces[k].chars().last().unwrap();
    let first_char = pieces[k + 1].chars().next().unwrap();
    let stop = format!("{last_char}{first_char}");
    let cut = base.text.find(&stop).unwrap();
    let with_stop = GenerateParams {
        stop: vec!["never appears \u{1}".into(), stop.clone()],
        ..greedy(12)
    };
    let (stopped, streamed) = run(&mut s, &prompt, &with_stop, &cancel);
    assert_eq!(stopped.finish_reason, FinishReason::Stop, "stop {stop:?}");
    assert_eq!(stopped.text, base.text[..cut]);
    assert_eq!(streamed, stopped.text);

    // An end-of-turn token ends generation without text.
    let eos_first = GenerateParams {
        sampling: SamplingParams {
            logit_bias: vec![(IM_END, 100.0)],
            ..SamplingParams::default()
        },
        ..greedy(12)
    };
    let (ended, _) = run(&mut s, &prompt, &eos_first, &cancel);
    assert_eq!(ended.finish_reason, FinishReason::Stop);
    assert_eq!(ended.generated_ids, vec![IM_END]);
    assert_eq!(
        (ended.text.as_str(), ended.usage.completion_tokens),
        ("", 0)
    );

    // Cancelling mid-stream stops at once with `abort`; the next request succeeds and gives
    // what an uninterrupted one gives.
    let mut deltas = 0;
    let flag = cancel.clone();
    let aborted = pollster::block_on(s.generate(&prompt, &greedy(12), &cancel, &mut |_| {
        deltas += 1;
        if deltas == 3 {
            flag.cancel();
        }
    }))
    .unwrap();
    assert_eq!(aborted.finish_reason, FinishReason::Abort);
    assert!(
        aborted.generated_ids.len() < 12,
        "{:?}",
        aborted.generated_ids
    );
    assert_eq!(
        aborted.generated_ids[..],
        base.generated_ids[..aborted.generated_ids.len()]
    );
    cancel.reset();
    let (again, _) = run(&mut s, &prompt, &greedy(12), &cancel);
    assert_eq!(again.generated_ids, base.generated_ids);

    // Cancelled before the first step: nothing is computed.
    cancel.cancel();
    let (none, _) = run(&mut s, &prompt, &greedy(12), &cancel);
    assert_eq!(none.finish_reason, FinishReason::Abort);
    assert!(none.generated_ids.is_empty());
    cancel.reset();

    // A prompt beyond the context is an error that leaves the session usable.
    let long = vec![prompt[5]; 129];
    let err = pollster::block_on(s.generate(&long, &greedy(4), &cancel, &mut |_| {})).unwrap_err();
    assert!(
        matches!(
            err,
            GenerationError::PromptTooLong {
                prompt: 129,
                capacity: 128
            }
        ),
        "{err}"
    );
    let (after, _) = run(&mut s, &prompt, &greedy(12), &cancel);
    assert_eq!(after.generated_ids, base.generated_ids);

    // max_tokens 0 is refused before any GPU work (the first token would be sampled before the
    // limit is checked); the cache stays as it was.
    let cached = s.cached_tokens();
    let err =
        pollster::block_on(s.generate(&prompt, &greedy(0), &cancel, &mut |_| {})).unwrap_err();
    assert!(
        matches!(&err, GenerationError::InvalidParam(p) if p.name == "max_tokens" && p.value == "0"),
        "{err}"
    );
    assert_eq!(s.cached_tokens(), cached);

    // Running into the end of the context finishes with `length`.
    let near_full = vec![prompt[5]; 126];
    let (full, _) = run(&mut s, &near_full, &greedy(50), &cancel);
    assert_eq!(full.finish_reason, FinishReason::Length);
    assert_eq!(full.generated_ids.len(), 3);
}

#[test]
fn second_turn_prefills_only_new_tokens() {
    let path = support::tiny_model();
    let mut s = session(&path, 256);
    let cancel = CancelFlag::new();
    let mut messages = vec![
        ChatMessage::system("You are terse."),
        ChatMessage::user("Name a colour."),
    ];
    let first_prompt = s.chat_prompt(&messages, None).unwrap();
    let first =
        pollster::block_on(s.chat(&messages, None, &greedy(6), &cancel, &mut |_| {})).unwrap();
    assert_eq!(first.usage.cached_prompt_tokens, 0);
    messages.push(ChatMessage::assistant(first.text.clone()));
    messages.push(ChatMessage::user("And another?"));
    let second_prompt = s.chat_prompt(&messages, None).unwrap();

    // What the cache holds: the first prompt and every generated token fed back (all but the
    // last sampled one).
    let mut in_cache = first_prompt.clone();
    in_cache.extend_from_slice(&first.generated_ids[..first.generated_ids.len() - 1]);
    let shared = in_cache
        .iter()
        .zip(&second_prompt)
        .take_while(|(a, b)| a == b)
        .count();
    assert!(
        shared >= first_prompt.len(),
        "{shared} < {}",
        first_prompt.len()
    );
    let second =
        pollster::block_on(s.chat(&messages, None, &greedy(6), &cancel, &mut |_| {})).unwrap();
    assert_eq!(second.usage.cached_prompt_tokens, shared);
    assert_eq!(second.usage.prompt_tokens, second_prompt.len());

    // Reusing the cache changes nothing in the result.
    let mut fresh = session(&path, 256);
    let reference =
        pollster::block_on(fresh.chat(&messages, None, &greedy(6), &cancel, &mut |_| {})).unwrap();
    assert_eq!(reference.usage.cached_prompt_tokens, 0);
    assert_eq!(second.generated_ids, reference.generated_ids);
    assert_eq!(second.text, reference.text);
}

#[test]
fn generate_cli_prints_the_documented_json() {
    let model = support::tiny_model();
    let run = |extra: &[&str]| -> Value {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_qwen-webgpu"))
            .arg("generate")
            .arg(&model)
            .args([
                "--chat",
                "--system",
                "Be brief.",
                "--prompt",
                "Hello",
                "--json",
            ])
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let sampled = [
        "--max-tokens",
        "6",
        "--temperature",
        "0.9",
        "--top-p",
        "0.95",
        "--seed",
        "11",
    ];
    let doc = run(&sampled);
    let again = run(&sampled);
    assert_eq!(without_timings(doc.clone()), without_timings(again));
    assert_eq!(doc["finish_reason"], "length");
    assert_eq!(doc["generated_ids"].as_array().unwrap().len(), 6);
    assert_eq!(doc["usage"]["completion_tokens"], 6);
    let prompt = doc["prompt_ids"].as_array().unwrap();
    assert_eq!(
        doc["usage"]["prompt_tokens"].as_u64().unwrap() as usize,
        prompt.len()
    );
    // The system message replaced the template's default.
    assert_eq!(prompt[..3], [151644, 8948, 198].map(Value::from));
    let text = doc["text"].as_str().unwrap();
    let first = text.chars().next().unwrap().to_string();
    let stopped = run(&[&sampled[..], &["--stop", first.as_str()]].concat());
    assert_eq!(stopped["finish_reason"], "stop");
    assert_eq!(stopped["text"], "");
}

/// The document without its timings, which differ between runs.
fn without_timings(mut doc: Value) -> Value {
    if let Some(usage) = doc["usage"].as_object_mut() {
        usage.remove("prefill_tokens_per_s");
        usage.remove("decode_tokens_per_s");
    }
    doc
}
