//! `n` choices from one prefill and the tokens' log probabilities, on the tiny model: choices
//! are different and reproducible under a seed, the cache is cut back to the prompt between
//! them, and each logprob is the log-softmax of the logits the GPU computed for its position.

mod support;

use std::path::Path;

use qwen_webgpu::engine::{Engine, EngineOptions, Readback, StepOutput};
use qwen_webgpu::generation::{CancelFlag, Completion, Delta, GenerateParams, Session};
use qwen_webgpu::gpu::GpuOptions;
use qwen_webgpu::native::{load_engine, open_model};
use qwen_webgpu::protocol::{ChatCompletionRequest, ChatMessage, CompletionRequest};
use qwen_webgpu::sampling::SamplingParams;

fn options() -> EngineOptions {
    EngineOptions {
        context_length: 256,
        prefill_chunk: 16,
        ..EngineOptions::default()
    }
}

fn session(path: &Path) -> Session {
    let (model, _) = open_model(path).unwrap();
    let engine = load_engine(path, &GpuOptions::default(), &options()).unwrap();
    Session::new(engine, &model).unwrap()
}

/// Runs `n` choices, returning them with each choice's streamed text and streamed logprob count.
fn choices(
    s: &mut Session,
    prompt: &[u32],
    params: &GenerateParams,
    n: usize,
) -> (Vec<Completion>, Vec<(String, usize)>) {
    let mut streamed = vec![(String::new(), 0); n];
    let done = pollster::block_on(s.generate_choices(
        prompt,
        params,
        n,
        &CancelFlag::new(),
        &mut |d: Delta| {
            streamed[d.choice].0.push_str(d.text);
            streamed[d.choice].1 += d.logprobs.len();
        },
    ))
    .unwrap();
    (done, streamed)
}

fn sampled(seed: u64, logprobs: Option<usize>) -> GenerateParams {
    GenerateParams {
        sampling: SamplingParams {
            temperature: 1.0,
            top_k: 50,
            seed: Some(seed),
            ..SamplingParams::default()
        },
        max_tokens: 10,
        logprobs,
        ..GenerateParams::default()
    }
}

/// The logits after `tokens`, from an engine of its own.
fn logits_after(engine: &mut Engine, tokens: &[u32]) -> Vec<f32> {
    engine.truncate(0);
    let chunks: Vec<&[u32]> = tokens.chunks(16).collect();
    let mut out = StepOutput::Nothing;
    for (i, chunk) in chunks.iter().enumerate() {
        let readback = if i + 1 == chunks.len() {
            Readback::Logits
        } else {
            Readback::Nothing
        };
        out = pollster::block_on(engine.step(chunk, readback)).unwrap();
    }
    match out {
        StepOutput::Logits(l) => l,
        other => panic!("expected logits, got {other:?}"),
    }
}

/// A token the bias test pushes up ("Hello").
const BIASED: u32 = 9707;

fn log_softmax(logits: &[f32], at: u32) -> f64 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let total: f64 = logits.iter().map(|&l| (l as f64 - max).exp()).sum();
    logits[at as usize] as f64 - max - total.ln()
}

#[test]
fn n_choices_share_one_prefill() {
    let path = support::tiny_model();
    let mut s = session(&path);
    let prompt = s
        .chat_prompt(&[ChatMessage::user("Tell me a story.")], None)
        .unwrap();

    let (two, streamed) = choices(&mut s, &prompt, &sampled(11, None), 2);
    assert_eq!(two.len(), 2);
    assert_ne!(two[0].generated_ids, two[1].generated_ids);
    for (c, (text, _)) in two.iter().zip(&streamed) {
        assert_eq!(&c.text, text);
        // Both choices report the one prefill: the whole prompt computed, nothing cached.
        assert_eq!(
            (c.usage.prompt_tokens, c.usage.cached_prompt_tokens),
            (prompt.len(), 0)
        );
    }
    // The cache was cut back to the prompt for the second choice, then holds its tokens.
    let second_fed = two[1].generated_ids.len() - 1;
    assert_eq!(s.cached_tokens(), prompt.len() + second_fed);
    // The same prompt again finds the prompt in the cache: only its last token is computed.
    let (again, _) = choices(&mut s, &prompt, &sampled(11, None), 1);
    assert_eq!(again[0].usage.cached_prompt_tokens, prompt.len() - 1);

    // From the same (uncached) start, the same seed gives the same two choices, and the first
    // is what n = 1 gives. (A cached prefix is computed by other kernels than a prefill: on the
    // tiny model's nearly flat distributions that alone can change a sampled token.)
    s.reset();
    let (repeat, _) = choices(&mut s, &prompt, &sampled(11, None), 2);
    assert_eq!(
        repeat.iter().map(|c| &c.generated_ids).collect::<Vec<_>>(),
        two.iter().map(|c| &c.generated_ids).collect::<Vec<_>>()
    );
    s.reset();
    let (one, _) = choices(&mut s, &prompt, &sampled(11, None), 1);
    assert_eq!(one[0].generated_ids, two[0].generated_ids);

    // Greedy choices are all the greedy reply: nothing of one choice leaks into the next.
    let greedy = GenerateParams {
        max_tokens: 10,
        logprobs: Some(0),
        ..GenerateParams::default()
    };
    let (three, _) = choices(&mut s, &prompt, &greedy, 3);
    let mut fresh = session(&path);
    let (reference, _) = choices(&mut fresh, &prompt, &greedy, 1);
    for c in &three {
        assert_eq!(c.generated_ids, reference[0].generated_ids);
        // Equal up to the cached prefix's own rounding (see above).
        for (a, b) in c.logprobs.iter().zip(&reference[0].logprobs) {
            assert_eq!(a.token, b.token);
            assert!((a.logprob - b.logprob).abs() < 1e-4, "{a:?} vs {b:?}");
        }
        assert_eq!(c.logprobs.len(), reference[0].logprobs.len());
    }
}

#[test]
fn logprobs_are_the_log_softmax_of_the_sampled_logits() {
    let path = support::tiny_model();
    let mut s = session(&path);
    let mut engine = load_engine(&path, &GpuOptions::default(), &options()).unwrap();
    let prompt = s
        .chat_prompt(&[ChatMessage::user("Count to five.")], None)
        .unwrap();
    for params in [
        sampled(3, Some(5)),
        GenerateParams {
            max_tokens: 6,
            logprobs: Some(20),
            ..GenerateParams::default()
        },
        // The bias is part of what is sampled from, so of the logprobs too.
        GenerateParams {
            sampling: SamplingParams {
                logit_bias: vec![(BIASED, 100.0)],
                ..SamplingParams::default()
            },
            max_tokens: 4,
            logprobs: Some(3),
            ..GenerateParams::default()
        },
    ] {
        let (done, streamed) = choices(&mut s, &prompt, &params, 1);
        let done = &done[0];
        assert_eq!(done.logprobs.len(), done.usage.completion_tokens);
        assert_eq!(
            streamed[0].1,
            done.logprobs.len(),
            "every logprob is streamed"
        );
        if !params.sampling.logit_bias.is_empty() {
            // The bias decides every token (its logprob is ~0, where unbiased it is ~-12).
            assert!(
                done.generated_ids.contains(&BIASED),
                "{:?}",
                done.generated_ids
            );
        }
        let top = params.logprobs.unwrap();
        let mut context = prompt.clone();
        for (lp, &token) in done.logprobs.iter().zip(&done.generated_ids) {
            assert_eq!(lp.token, token);
            let mut logits = logits_after(&mut engine, &context);
            for &(id, bias) in &params.sampling.logit_bias {
                logits[id as usize] += bias;
            }
            // Temperature 1 (or greedy), no penalties: the (biased) logits' log-softmax.
            let expected = log_softmax(&logits, token);
            assert!(
                (lp.logprob as f64 - expected).abs() < 1e-3,
                "{} vs {expected}",
                lp.logprob
            );
            assert_eq!(lp.top.len(), top);
            assert!(lp.top.windows(2).all(|w| w[0].1 >= w[1].1), "{:?}", lp.top);
            for &(id, l) in &lp.top {
                assert!((l as f64 - log_softmax(&logits, id)).abs() < 1e-3);
            }
            if params.sampling.temperature == 0.0 {
                assert_eq!(lp.top[0], (token, lp.logprob));
            }
            context.push(token);
        }
    }
}

#[test]
fn requests_with_n_and_raw_prompts() {
    let path = support::tiny_model();
    let mut s = session(&path);
    let request: ChatCompletionRequest = serde_json::from_str(
        r#"{"messages":[{"role":"user","content":"Hi"}],"n":2,"seed":4,"max_tokens":5,
            "temperature":1,"logprobs":true,"top_logprobs":2}"#,
    )
    .unwrap();
    let mut seen = [0usize; 2];
    let reply = pollster::block_on(s.chat_completion(
        &request,
        &CancelFlag::new(),
        &mut |d: Delta| seen[d.choice] += d.text.len(),
    ))
    .unwrap();
    assert_eq!(reply.choices.len(), 2);
    assert_eq!(
        reply.usage.completion_tokens,
        reply
            .choices
            .iter()
            .map(|c| c.completion.usage.completion_tokens)
            .sum::<usize>()
    );
    for (c, &bytes) in reply.choices.iter().zip(&seen) {
        assert_eq!(c.content.len(), bytes);
        assert!(c.completion.logprobs.iter().all(|t| t.top.len() == 2));
    }

    // A raw prompt is continued as plain text: `<|im_start|>` is not the control token.
    let raw: CompletionRequest = serde_json::from_str(
        r#"{"prompt":"<|im_start|>Once upon a time","max_tokens":4,"temperature":0,"echo":true}"#,
    )
    .unwrap();
    let mut streamed = String::new();
    let reply = pollster::block_on(s.completion(&raw, &CancelFlag::new(), &mut |d: Delta| {
        streamed.push_str(d.text)
    }))
    .unwrap();
    let plain = s.tokenizer().encode(&raw.prompt, false).unwrap();
    assert!(!plain.contains(&s.tokenizer().token_id("<|im_start|>").unwrap()));
    assert_eq!(reply.usage.prompt_tokens, plain.len());
    let choice = &reply.choices[0];
    assert_eq!(choice.prompt_ids, plain);
    assert!(choice.text.starts_with(&raw.prompt));
    assert_eq!(streamed, choice.text);
    let continued = s.tokenizer().decode(&choice.generated_ids).unwrap();
    assert!(choice.text.ends_with(&continued) || choice.finish_reason.as_str() == "stop");
}

#[test]
fn gbnf_grammars_are_obeyed() {
    let path = support::tiny_model();
    let mut s = session(&path);
    let ask = |s: &mut Session, grammar: &str, seed: u64| {
        let request: ChatCompletionRequest = serde_json::from_value(serde_json::json!({
            "messages": [{"role": "user", "content": "Answer."}],
            "response_format": {"type": "grammar", "grammar": grammar},
            "temperature": 1, "seed": seed, "max_tokens": 30, "n": 2,
        }))
        .unwrap();
        pollster::block_on(s.chat_completion(&request, &CancelFlag::new(), &mut |_| {}))
    };
    for seed in 0..4 {
        let reply = ask(&mut s, "root ::= \"yes\" | \"no\"", seed).unwrap();
        for c in &reply.choices {
            assert!(
                ["yes", "no"].contains(&c.content.as_str()),
                "{:?}",
                c.content
            );
            assert_eq!(c.finish_reason.as_str(), "stop");
        }
    }

    let grammar = "root ::= word (\", \" word){1,2} \"!\"\nword ::= [a-c] [a-cX]{1,3}\n";
    let shape = regex_lite_match;
    for seed in 0..3 {
        let reply = ask(&mut s, grammar, seed).unwrap();
        for c in &reply.choices {
            assert!(shape(&c.content), "{:?}", c.content);
        }
    }
    let refused = ask(&mut s, "root ::= <|im_end|>", 0)
        .unwrap_err()
        .to_string();
    assert!(refused.contains("token references"), "{refused}");
}

/// Whether `text` is 2 or 3 comma-separated words of [a-c][a-cX]{1,3}, then "!".
fn regex_lite_match(text: &str) -> bool {
    let Some(body) = text.strip_suffix('!') else {
        return false;
    };
    let words: Vec<&str> = body.split(", ").collect();
    (2..=3).contains(&words.len())
        && words.iter().all(|w| {
            let mut chars = w.chars();
            chars.next().is_some_and(|c| ('a'..='c').contains(&c))
                && (2..=4).contains(&w.chars().count())
                && chars.all(|c| ('a'..='c').contains(&c) || c == 'X')
        })
}
