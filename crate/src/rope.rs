//! Rotary position embedding as llama.cpp computes it: the scaling in force (none, linear or
//! YaRN, from the file's `rope.scaling.*` keys or a caller's override) and the table of cos and
//! sin per position and rotation pair that the RoPE kernel reads.

use serde::Deserialize;

use crate::model_config::Qwen2Config;

/// How positions are stretched past the trained context.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RopeScalingType {
    None,
    Linear,
    /// YaRN: interpolation for low frequencies, extrapolation for high ones, ramped between
    /// `beta_slow` and `beta_fast` rotations over the original context, and an attention factor.
    Yarn,
}

impl std::str::FromStr for RopeScalingType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(RopeScalingType::None),
            "linear" => Ok(RopeScalingType::Linear),
            "yarn" => Ok(RopeScalingType::Yarn),
            other => Err(format!(
                "RoPE scaling {other:?} is not supported (none, linear or yarn)"
            )),
        }
    }
}

/// A caller's override of the file's scaling (llama.cpp's `--rope-scaling`, `--rope-scale`,
/// `--yarn-orig-ctx`); each field left out keeps the file's value.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RopeScalingOverride {
    #[serde(rename = "type")]
    pub kind: Option<RopeScalingType>,
    /// Context stretch (llama.cpp's `--rope-scale`: frequencies are divided by it).
    pub factor: Option<f32>,
    /// The context the model was trained on, which YaRN's ramp is measured against.
    pub original_context_length: Option<usize>,
}

/// The resolved RoPE settings, as llama.cpp's `ggml_rope_ext` takes them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rope {
    pub kind: RopeScalingType,
    pub base: f32,
    /// 1 / factor.
    pub freq_scale: f32,
    /// How far YaRN mixes extrapolation in (1 for YaRN, 0 otherwise, unless the file says).
    pub ext_factor: f32,
    pub attn_factor: f32,
    pub beta_fast: f32,
    pub beta_slow: f32,
    pub original_context_length: usize,
}

/// YaRN's defaults in llama.cpp (and the YaRN paper): rotations counted over the original
/// context at which the ramp starts and ends.
const BETA_FAST: f32 = 32.0;
const BETA_SLOW: f32 = 1.0;

impl Rope {
    /// The scaling in force: the override's fields over the file's, as llama.cpp resolves them.
    pub fn resolve(
        config: &Qwen2Config,
        over: Option<&RopeScalingOverride>,
    ) -> Result<Rope, String> {
        let file = config.rope_scaling.as_ref();
        let file_kind = match file {
            Some(s) => s.kind.parse()?,
            None => RopeScalingType::None,
        };
        let kind = over.and_then(|o| o.kind).unwrap_or(file_kind);
        let factor = match over.and_then(|o| o.factor) {
            Some(f) => f,
            None if kind == RopeScalingType::None => 1.0,
            None => file.map_or(1.0, |s| s.factor),
        };
        if !(factor.is_finite() && factor >= 1.0) {
            return Err(format!("RoPE scale {factor} must be a finite number ≥ 1"));
        }
        let original_context_length = over
            .and_then(|o| o.original_context_length)
            .or_else(|| {
                file.and_then(|s| s.original_context_length)
                    .map(|n| n as usize)
            })
            .unwrap_or(config.context_length);
        if original_context_length == 0 {
            return Err("the original context length must be positive".into());
        }
        let yarn = |get: fn(&crate::model_config::RopeScaling) -> Option<f32>| file.and_then(get);
        Ok(Rope {
            kind,
            base: config.rope_base,
            freq_scale: if kind == RopeScalingType::None {
                1.0
            } else {
                1.0 / factor
            },
            ext_factor: match kind {
                RopeScalingType::Yarn => yarn(|s| s.yarn_ext_factor).unwrap_or(1.0),
                _ => 0.0,
            },
            attn_factor: yarn(|s| s.yarn_attn_factor).unwrap_or(1.0),
            beta_fast: yarn(|s| s.yarn_beta_fast).unwrap_or(BETA_FAST),
            beta_slow: yarn(|s| s.yarn_beta_slow).unwrap_or(BETA_SLOW),
            original_context_length,
        })
    }

    /// Most positions this scaling serves: the trained context, stretched by the factor.
    pub fn max_context(&self, trained: usize) -> usize {
        let base = match self.kind {
            RopeScalingType::None => return trained,
            RopeScalingType::Linear => trained,
            RopeScalingType::Yarn => self.original_context_length,
        };
        (base as f64 / f64::from(self.freq_scale)).round() as usize
    }

    /// YaRN's correction range: the rotation pairs between which it ramps from extrapolation
    /// (fast-rotating pairs) to interpolation (slow ones), as `ggml_rope_yarn_corr_dims`.
    pub fn yarn_corr_dims(&self, n_dims: usize) -> [f32; 2] {
        let corr_dim = |n_rot: f32| {
            n_dims as f32
                * (self.original_context_length as f32 / (n_rot * 2.0 * std::f32::consts::PI)).ln()
                / (2.0 * self.base.ln())
        };
        let start = corr_dim(self.beta_fast).floor();
        let end = corr_dim(self.beta_slow).ceil();
        [start.max(0.0), end.min(n_dims as f32 - 1.0)]
    }

    /// cos and sin of each position and rotation pair (NEOX layout: pair `i` rotates dims `i`
    /// and `i + d/2`), scaled by YaRN's attention factor where it applies. As llama.cpp: the
    /// unscaled angle `p * base^(-2i/d)` built by repeated f32 multiplication, then interpolated.
    pub fn table(&self, capacity: usize, head_dim: usize) -> Vec<[f32; 2]> {
        let half = head_dim / 2;
        let theta_scale = self.base.powf(-2.0 / head_dim as f32);
        let corr = self.yarn_corr_dims(head_dim);
        let mut mscale = self.attn_factor;
        if self.ext_factor != 0.0 {
            mscale *= 1.0 + 0.1 * (1.0 / self.freq_scale).ln();
        }
        let mut table = Vec::with_capacity(capacity * half);
        for p in 0..capacity {
            let mut theta_extrap = p as f32;
            for i in 0..half {
                let theta_interp = self.freq_scale * theta_extrap;
                let theta = if self.ext_factor != 0.0 {
                    let ramp_mix = yarn_ramp(corr, i) * self.ext_factor;
                    theta_interp * (1.0 - ramp_mix) + theta_extrap * ramp_mix
                } else {
                    theta_interp
                };
                table.push([theta.cos() * mscale, theta.sin() * mscale]);
                theta_extrap *= theta_scale;
            }
        }
        table
    }
}

/// 1 below the correction range (extrapolate), 0 above it (interpolate), linear between.
fn yarn_ramp([low, high]: [f32; 2], pair: usize) -> f32 {
    let y = (pair as f32 - low) / (high - low).max(0.001);
    1.0 - y.clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rope(kind: RopeScalingType, factor: f32, base: f32, original: usize) -> Rope {
        Rope {
            kind,
            base,
            freq_scale: 1.0 / factor,
            ext_factor: if kind == RopeScalingType::Yarn {
                1.0
            } else {
                0.0
            },
            attn_factor: 1.0,
            beta_fast: BETA_FAST,
            beta_slow: BETA_SLOW,
            original_context_length: original,
        }
    }

    #[test]
    fn unscaled_table_matches_direct_angles() {
        let table = rope(RopeScalingType::None, 1.0, 10_000.0, 4096).table(3, 8);
        assert_eq!(table.len(), 3 * 4);
        assert_eq!(table[0], [1.0, 0.0]);
        let theta = 2.0f64 * 10_000f64.powf(-2.0 * 3.0 / 8.0);
        assert!((table[2 * 4 + 3][0] as f64 - theta.cos()).abs() < 1e-6);
        assert!((table[2 * 4 + 3][1] as f64 - theta.sin()).abs() < 1e-6);
    }

    #[test]
    fn linear_scaling_divides_every_angle() {
        let table = rope(RopeScalingType::Linear, 4.0, 10_000.0, 4096).table(9, 8);
        let theta = 8.0f64 / 4.0 * 10_000f64.powf(-2.0 / 8.0);
        assert!((table[8 * 4 + 1][0] as f64 - theta.cos()).abs() < 1e-6);
        assert!((table[8 * 4 + 1][1] as f64 - theta.sin()).abs() < 1e-6);
    }

    /// Qwen2.5-7B (head_dim 128, base 1e6) with YaRN ×4 over 32,768: worked by hand from
    /// `corr_dim(r) = d ln(n_ctx / (2π r)) / (2 ln base)`: 23.6 for r = 32 and 39.6 for r = 1.
    #[test]
    fn yarn_ramps_between_the_correction_dims() {
        let r = rope(RopeScalingType::Yarn, 4.0, 1_000_000.0, 32_768);
        assert_eq!(r.yarn_corr_dims(128), [23.0, 40.0]);
        assert_eq!(r.max_context(32_768), 131_072);
        let table = r.table(1001, 128);
        let mscale = 1.0 + 0.1 * 4f64.ln();
        let p = 1000.0f64;
        for (pair, mix) in [
            (0usize, 1.0f64),
            (23, 1.0),
            (30, 1.0 - 7.0 / 17.0),
            (40, 0.0),
            (63, 0.0),
        ] {
            let extrap = p * 1e6f64.powf(-2.0 * pair as f64 / 128.0);
            let theta = extrap / 4.0 * (1.0 - mix) + extrap * mix;
            let [c, s] = table[1000 * 64 + pair];
            // f32 angles of up to 1000 radians carry ~1e-4 of rounding.
            assert!(
                (c as f64 - theta.cos() * mscale).abs() < 2e-3,
                "pair {pair}: cos {c}"
            );
            assert!(
                (s as f64 - theta.sin() * mscale).abs() < 2e-3,
                "pair {pair}: sin {s}"
            );
        }
        // YaRN's attention factor scales position 0 too: 0.1 ln 4 + 1.
        assert!((table[0][0] as f64 - mscale).abs() < 1e-6);
    }

    #[test]
    fn overrides_take_precedence_over_the_file() {
        let config = Qwen2Config {
            n_layers: 1,
            hidden_size: 64,
            ffn_size: 128,
            n_heads: 2,
            n_kv_heads: 1,
            head_dim: 32,
            rope_base: 1e6,
            rope_scaling: None,
            rms_eps: 1e-6,
            context_length: 32_768,
            vocab_size: 100,
            tied_embeddings: true,
        };
        let plain = Rope::resolve(&config, None).unwrap();
        assert_eq!(
            (plain.kind, plain.freq_scale, plain.ext_factor),
            (RopeScalingType::None, 1.0, 0.0)
        );
        assert_eq!(plain.max_context(32_768), 32_768);
        let yarn = Rope::resolve(
            &config,
            Some(&RopeScalingOverride {
                kind: Some(RopeScalingType::Yarn),
                factor: Some(4.0),
                original_context_length: None,
            }),
        )
        .unwrap();
        assert_eq!(
            (
                yarn.freq_scale,
                yarn.ext_factor,
                yarn.original_context_length
            ),
            (0.25, 1.0, 32_768)
        );
        assert_eq!(yarn.max_context(32_768), 131_072);
        let bad = RopeScalingOverride {
            factor: Some(0.5),
            ..RopeScalingOverride::default()
        };
        assert!(Rope::resolve(&config, Some(&bad)).is_err());
    }
}
