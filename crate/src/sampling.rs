//! Choosing the next token from logits: logit bias, repetition / presence / frequency
//! penalties, then greedy (temperature 0) or top-k → temperature → top-p → min-p → a seeded draw.
//!
//! The order follows llama.cpp's default chain where the two agree (penalties before
//! truncation, min-p relative to the most likely token), with temperature applied before top-p
//! as OpenAI documents it. The random stream is PCG-64 from the seed, so the same seed, model and
//! prompt give the same tokens on every platform.

use rand_core::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};

/// Sampling settings (OpenAI names where OpenAI has the setting).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SamplingParams {
    /// 0 is greedy: always the most likely token.
    pub temperature: f32,
    /// Keep only the `top_k` most likely tokens (0: all).
    pub top_k: usize,
    /// Keep the smallest set of most likely tokens whose probability reaches `top_p`.
    pub top_p: f32,
    /// Drop tokens less likely than `min_p` times the most likely one.
    pub min_p: f32,
    /// llama.cpp's repetition penalty over the last `penalty_window` tokens: positive logits
    /// are divided by it, negative ones multiplied (1: off).
    pub repetition_penalty: f32,
    /// Subtracted once from the logit of every token already generated (OpenAI).
    pub presence_penalty: f32,
    /// Subtracted from a token's logit once per time it was generated (OpenAI).
    pub frequency_penalty: f32,
    /// How many recent tokens the penalties look at.
    pub penalty_window: usize,
    /// Added to the logits of these tokens (OpenAI's `logit_bias`; -100 bans a token).
    pub logit_bias: Vec<(u32, f32)>,
    /// The random stream's seed; `None` picks one from the platform's clock or RNG.
    pub seed: Option<u64>,
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams {
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            repetition_penalty: 1.0,
            presence_penalty: 0.0,
            frequency_penalty: 0.0,
            penalty_window: 64,
            logit_bias: Vec::new(),
            seed: None,
        }
    }
}

/// A setting outside its range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{name} is {value}; it must be {range}")]
pub struct InvalidParam {
    pub name: &'static str,
    pub value: String,
    pub range: &'static str,
}

impl SamplingParams {
    /// Whether the next token is the argmax of the raw logits, so only the argmax needs to
    /// leave the GPU.
    pub fn is_plain_greedy(&self) -> bool {
        self.temperature <= 0.0 && !self.changes_logits()
    }

    fn changes_logits(&self) -> bool {
        self.repetition_penalty != 1.0
            || self.presence_penalty != 0.0
            || self.frequency_penalty != 0.0
            || !self.logit_bias.is_empty()
    }

    /// Checks every setting's range.
    pub fn validate(&self) -> Result<(), InvalidParam> {
        fn check(
            name: &'static str,
            value: f32,
            ok: bool,
            range: &'static str,
        ) -> Result<(), InvalidParam> {
            if ok && value.is_finite() {
                Ok(())
            } else {
                Err(InvalidParam {
                    name,
                    value: value.to_string(),
                    range,
                })
            }
        }
        let t = self.temperature;
        check(
            "temperature",
            t,
            (0.0..=100.0).contains(&t),
            "between 0 and 100",
        )?;
        let p = self.top_p;
        check("top_p", p, p > 0.0 && p <= 1.0, "in (0, 1]")?;
        let m = self.min_p;
        check("min_p", m, (0.0..=1.0).contains(&m), "between 0 and 1")?;
        let r = self.repetition_penalty;
        check("repetition_penalty", r, r > 0.0, "positive")?;
        for (name, v) in [
            ("presence_penalty", self.presence_penalty),
            ("frequency_penalty", self.frequency_penalty),
        ] {
            check(name, v, (-2.0..=2.0).contains(&v), "between -2 and 2")?;
        }
        for &(_, bias) in &self.logit_bias {
            check(
                "logit_bias",
                bias,
                (-100.0..=100.0).contains(&bias),
                "between -100 and 100",
            )?;
        }
        Ok(())
    }
}

/// A sampler: the settings plus the random stream, which advances with each draw.
#[derive(Debug, Clone)]
pub struct Sampler {
    params: SamplingParams,
    rng: Pcg64Mcg,
    /// Scratch reused across steps: candidate ids and their weights.
    candidates: Vec<(u32, f32)>,
}

impl Sampler {
    /// `default_seed` is used when the settings give none.
    pub fn new(params: SamplingParams, default_seed: u64) -> Sampler {
        let seed = params.seed.unwrap_or(default_seed);
        Sampler {
            params,
            rng: Pcg64Mcg::seed_from_u64(seed),
            candidates: Vec::new(),
        }
    }

    pub fn params(&self) -> &SamplingParams {
        &self.params
    }

    /// Picks the next token. `logits` is modified (bias and penalties are applied in place);
    /// `history` is the tokens generated so far, which the penalties look at.
    pub fn sample(&mut self, logits: &mut [f32], history: &[u32]) -> u32 {
        let p = &self.params;
        for &(id, bias) in &p.logit_bias {
            if let Some(l) = logits.get_mut(id as usize) {
                *l += bias;
            }
        }
        self.apply_penalties(logits, history);
        let p = &self.params;
        if p.temperature <= 0.0 {
            return argmax(logits);
        }
        let c = &mut self.candidates;
        c.clear();
        c.extend(
            logits
                .iter()
                .enumerate()
                .filter(|(_, l)| l.is_finite())
                .map(|(i, &l)| (i as u32, l)),
        );
        if c.is_empty() {
            return argmax(logits);
        }
        let by_logit = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        if p.top_k > 0 && p.top_k < c.len() {
            c.select_nth_unstable_by(p.top_k - 1, by_logit);
            c.truncate(p.top_k);
        }
        // Softmax with temperature, from the largest logit for stability.
        let max = c.iter().map(|x| x.1).fold(f32::NEG_INFINITY, f32::max);
        let mut total = 0.0f64;
        for x in c.iter_mut() {
            x.1 = ((x.1 - max) / p.temperature).exp();
            total += x.1 as f64;
        }
        if p.min_p > 0.0 {
            // The most likely token has weight 1 (exp(0)), so the cut is min_p itself.
            c.retain(|x| x.1 >= p.min_p);
            total = c.iter().map(|x| x.1 as f64).sum();
        }
        if p.top_p < 1.0 {
            c.sort_unstable_by(by_logit);
            let mut kept = 0.0f64;
            let mut n = 0;
            for x in c.iter() {
                kept += x.1 as f64;
                n += 1;
                if kept >= p.top_p as f64 * total {
                    break;
                }
            }
            c.truncate(n.max(1));
            total = kept;
        }
        let r = unit_f64(self.rng.next_u64()) * total;
        let mut acc = 0.0f64;
        for x in c.iter() {
            acc += x.1 as f64;
            if r < acc {
                return x.0;
            }
        }
        // Rounding left r at the very end of the range.
        c.last().map_or_else(|| argmax(logits), |x| x.0)
    }

    fn apply_penalties(&self, logits: &mut [f32], history: &[u32]) {
        let p = &self.params;
        if !self.params.changes_logits() || history.is_empty() {
            return;
        }
        let recent = &history[history.len().saturating_sub(p.penalty_window)..];
        let mut counts: Vec<(u32, u32)> = Vec::with_capacity(recent.len());
        for &t in recent {
            match counts.iter_mut().find(|(id, _)| *id == t) {
                Some((_, n)) => *n += 1,
                None => counts.push((t, 1)),
            }
        }
        for (id, n) in counts {
            let Some(l) = logits.get_mut(id as usize) else {
                continue;
            };
            if p.repetition_penalty != 1.0 {
                *l = if *l > 0.0 {
                    *l / p.repetition_penalty
                } else {
                    *l * p.repetition_penalty
                };
            }
            *l -= p.presence_penalty + p.frequency_penalty * n as f32;
        }
    }
}

/// The index of the largest logit (the lowest index among equals), as the GPU argmax picks.
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    best as u32
}

/// A uniform draw in [0, 1) from 53 random bits.
fn unit_f64(bits: u64) -> f64 {
    (bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(temperature: f32) -> SamplingParams {
        SamplingParams {
            temperature,
            seed: Some(7),
            ..SamplingParams::default()
        }
    }

    /// How often each token is drawn in `n` draws.
    fn histogram(p: SamplingParams, logits: &[f32], n: usize) -> Vec<usize> {
        let mut s = Sampler::new(p, 0);
        let mut counts = vec![0; logits.len()];
        for _ in 0..n {
            let mut l = logits.to_vec();
            counts[s.sample(&mut l, &[]) as usize] += 1;
        }
        counts
    }

    #[test]
    fn temperature_zero_is_argmax() {
        let mut s = Sampler::new(params(0.0), 0);
        assert_eq!(s.sample(&mut [0.1, 3.0, 2.9, 3.0], &[]), 1);
    }

    #[test]
    fn draws_follow_the_softmax() {
        // ln(1), ln(2), ln(3), ln(4): probabilities 0.1, 0.2, 0.3, 0.4.
        let logits = [0.0f32, 2f32.ln(), 3f32.ln(), 4f32.ln()];
        let counts = histogram(params(1.0), &logits, 20_000);
        for (i, &c) in counts.iter().enumerate() {
            let expected = 2000.0 * (i + 1) as f64;
            assert!((c as f64 - expected).abs() < 300.0, "{counts:?}");
        }
    }

    #[test]
    fn same_seed_same_tokens() {
        let logits: Vec<f32> = (0..1000).map(|i| ((i * 37) % 101) as f32 / 10.0).collect();
        let run = |seed| {
            let mut s = Sampler::new(
                SamplingParams {
                    seed: Some(seed),
                    ..params(1.0)
                },
                0,
            );
            (0..50)
                .map(|_| s.sample(&mut logits.clone(), &[]))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
    }

    #[test]
    fn truncations() {
        let logits = [0.0f32, 2f32.ln(), 3f32.ln(), 4f32.ln()];
        let top_k = histogram(
            SamplingParams {
                top_k: 2,
                ..params(1.0)
            },
            &logits,
            2000,
        );
        assert_eq!((top_k[0], top_k[1]), (0, 0), "{top_k:?}");
        assert!(top_k[2] > 0 && top_k[3] > top_k[2], "{top_k:?}");
        // 0.4 + 0.3 = 0.7 ≥ 0.65: tokens 3 and 2 only.
        let top_p = histogram(
            SamplingParams {
                top_p: 0.65,
                ..params(1.0)
            },
            &logits,
            2000,
        );
        assert_eq!((top_p[0], top_p[1]), (0, 0), "{top_p:?}");
        // min_p 0.6: at least 0.6 × 0.4, so only 0.3 and 0.4 stay.
        let min_p = histogram(
            SamplingParams {
                min_p: 0.6,
                ..params(1.0)
            },
            &logits,
            2000,
        );
        assert_eq!((min_p[0], min_p[1]), (0, 0), "{min_p:?}");
        assert!(min_p[2] > 0, "{min_p:?}");
    }

    #[test]
    fn bias_and_penalties() {
        let mut s = Sampler::new(
            SamplingParams {
                logit_bias: vec![(0, 5.0)],
                ..params(0.0)
            },
            0,
        );
        assert_eq!(s.sample(&mut [1.0, 2.0, 3.0], &[]), 0);
        let mut s = Sampler::new(
            SamplingParams {
                repetition_penalty: 2.0,
                ..params(0.0)
            },
            0,
        );
        let mut logits = [4.0, 3.0, -1.0];
        assert_eq!(s.sample(&mut logits, &[0, 2]), 1);
        assert_eq!(logits, [2.0, 3.0, -2.0]);
        let mut s = Sampler::new(
            SamplingParams {
                presence_penalty: 0.5,
                frequency_penalty: 0.25,
                ..params(0.0)
            },
            0,
        );
        let mut logits = [4.0, 3.0, 0.0];
        s.sample(&mut logits, &[0, 0, 1]);
        assert_eq!(logits, [3.0, 2.25, 0.0]);
    }

    #[test]
    fn validation() {
        assert!(params(0.7).validate().is_ok());
        let bad = SamplingParams {
            top_p: 0.0,
            ..params(1.0)
        };
        assert_eq!(bad.validate().unwrap_err().name, "top_p");
        let bad = SamplingParams {
            temperature: f32::NAN,
            ..params(1.0)
        };
        assert_eq!(bad.validate().unwrap_err().name, "temperature");
    }
}
