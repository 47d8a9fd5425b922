//! Log probabilities of sampled tokens (OpenAI's `logprobs` and `top_logprobs`): the
//! log-softmax of the logits each token was actually drawn from (after logit bias, penalties and
//! the grammar mask, divided by the temperature; greedy decoding counts as temperature 1), for
//! the chosen token and the most likely alternatives, and their OpenAI JSON shape.

use crate::protocol::{ChatCompletionTokenLogprob, TopLogprob};
use crate::tokenizer::Tokenizer;

/// The most alternatives a request may ask for (OpenAI's limit).
pub const MAX_TOP_LOGPROBS: usize = 20;

/// One sampled token's log probability and the most likely alternatives at its position.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenLogprob {
    pub token: u32,
    pub logprob: f32,
    /// Up to the requested number of `(token, logprob)`, most likely first (lower id first
    /// among equals); banned tokens (-∞) never appear.
    pub top: Vec<(u32, f32)>,
}

/// The log probability of `chosen` and the `top` most likely tokens under the distribution that
/// `logits` (already biased, penalized and masked) give at `temperature`.
pub fn token_logprob(logits: &[f32], temperature: f32, chosen: u32, top: usize) -> TokenLogprob {
    let scale = if temperature > 0.0 {
        1.0 / temperature as f64
    } else {
        1.0
    };
    let max = logits
        .iter()
        .copied()
        .filter(|l| l.is_finite())
        .fold(f32::NEG_INFINITY, f32::max);
    // exp of (l - max) · scale, summed in f64: the largest term is 1, so the sum cannot overflow.
    let total: f64 = logits
        .iter()
        .filter(|l| l.is_finite())
        .map(|&l| ((l - max) as f64 * scale).exp())
        .sum();
    let log_total = total.ln();
    let logprob = |l: f32| {
        if l.is_finite() {
            ((l - max) as f64 * scale - log_total) as f32
        } else {
            f32::NEG_INFINITY
        }
    };
    let chosen_logit = logits
        .get(chosen as usize)
        .copied()
        .unwrap_or(f32::NEG_INFINITY);
    TokenLogprob {
        token: chosen,
        logprob: logprob(chosen_logit),
        top: top_logits(logits, top)
            .into_iter()
            .map(|(id, l)| (id, logprob(l)))
            .collect(),
    }
}

/// The `k` largest finite logits with their ids, largest first, lower id first among equals:
/// one pass keeping a sorted list of at most `k`, as `k` ≤ 20 and vocabularies are ~150k.
fn top_logits(logits: &[f32], k: usize) -> Vec<(u32, f32)> {
    let mut best: Vec<(u32, f32)> = Vec::with_capacity(k + 1);
    if k == 0 {
        return best;
    }
    for (id, &l) in logits.iter().enumerate() {
        if !l.is_finite() || (best.len() == k && best.last().is_some_and(|&(_, low)| l <= low)) {
            continue;
        }
        let at = best.partition_point(|&(_, x)| x >= l);
        best.insert(at, (id as u32, l));
        best.truncate(k);
    }
    best
}

/// `tokens` in OpenAI's `choices[i].logprobs.content` shape: each token's text (its bytes,
/// lossily decoded where a token holds part of a character) and bytes.
pub fn openai_logprobs(
    tokens: &[TokenLogprob],
    tokenizer: &Tokenizer,
) -> Vec<ChatCompletionTokenLogprob> {
    let entry = |id: u32, logprob: f32| {
        let bytes = tokenizer.token_bytes(id).unwrap_or_default().to_vec();
        TopLogprob {
            token: String::from_utf8_lossy(&bytes).into_owned(),
            logprob,
            bytes,
        }
    };
    tokens
        .iter()
        .map(|t| {
            let TopLogprob {
                token,
                logprob,
                bytes,
            } = entry(t.token, t.logprob);
            ChatCompletionTokenLogprob {
                token,
                logprob,
                bytes,
                top_logprobs: t.top.iter().map(|&(id, l)| entry(id, l)).collect(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f32, b: f64) -> bool {
        (a as f64 - b).abs() < 1e-5
    }

    #[test]
    fn log_softmax_of_a_known_distribution() {
        // ln 1, ln 2, ln 3, ln 4 + 7 (a shift changes nothing): probabilities 0.1 … 0.4.
        let logits: Vec<f32> = [1.0f32, 2.0, 3.0, 4.0]
            .iter()
            .map(|p| p.ln() + 7.0)
            .collect();
        let lp = token_logprob(&logits, 1.0, 2, 3);
        assert!(close(lp.logprob, 0.3f64.ln()), "{lp:?}");
        let ids: Vec<u32> = lp.top.iter().map(|t| t.0).collect();
        assert_eq!(ids, [3, 2, 1]);
        for (&(id, l), p) in lp.top.iter().zip([0.4f64, 0.3, 0.2]) {
            assert!(close(l, p.ln()), "{id}: {l} vs ln {p}");
        }
        // The chosen token's logprob is the log-softmax at its id, whether or not it is in top.
        let lp = token_logprob(&logits, 1.0, 0, 2);
        assert!(close(lp.logprob, 0.1f64.ln()));
        assert_eq!(lp.top.len(), 2);
    }

    #[test]
    fn temperature_and_masked_tokens() {
        // Temperature 2 on logits 0 and 2 ln 3: weights 1 and 3, so 0.25 and 0.75.
        let logits = [0.0f32, 2.0 * 3f32.ln(), f32::NEG_INFINITY];
        let lp = token_logprob(&logits, 2.0, 1, 5);
        assert!(close(lp.logprob, 0.75f64.ln()), "{lp:?}");
        // The masked token is never listed, however many are asked for.
        assert_eq!(lp.top.iter().map(|t| t.0).collect::<Vec<_>>(), [1, 0]);
        assert!(close(lp.top[1].1, 0.25f64.ln()));
        // Greedy (temperature 0) reports the untempered distribution.
        let lp = token_logprob(&[0.0, 3f32.ln()], 0.0, 1, 0);
        assert!(close(lp.logprob, 0.75f64.ln()) && lp.top.is_empty());
    }

    #[test]
    fn top_logits_are_sorted_with_ties_by_id() {
        let logits = [1.0, 5.0, 3.0, 5.0, -2.0, 4.0];
        assert_eq!(
            top_logits(&logits, 4),
            [(1, 5.0), (3, 5.0), (5, 4.0), (2, 3.0)]
        );
        assert_eq!(top_logits(&logits, 20).len(), 6);
        assert!(top_logits(&logits, 0).is_empty());
    }
}
