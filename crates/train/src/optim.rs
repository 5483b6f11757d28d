//! AdamW (Loshchilov & Hutter 2019) whose state can be saved and restored, so that a training
//! run resumed from a checkpoint continues exactly as if it had never stopped. (candle-nn's
//! AdamW keeps its moments private.)

use std::collections::HashMap;

use candle_core::{Tensor, Var, backprop::GradStore};

use crate::error::{Error, Result};

/// AdamW's settings.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct AdamWConfig {
    /// The step size. Default: 3e-3.
    pub lr: f64,
    /// The first moment's decay. Default: 0.9.
    pub beta1: f64,
    /// The second moment's decay. Default: 0.99.
    pub beta2: f64,
    /// Added to the second moment's root. Default: 1e-8.
    pub eps: f64,
    /// Decoupled weight decay (matrices only; not gains, biases or positions). Default: 0.1.
    pub weight_decay: f64,
}

impl AdamWConfig {
    /// The default settings with the step size `lr`.
    pub fn with_lr(lr: f64) -> AdamWConfig {
        AdamWConfig { lr, ..AdamWConfig::default() }
    }
}

impl Default for AdamWConfig {
    fn default() -> AdamWConfig {
        AdamWConfig { lr: 3e-3, beta1: 0.9, beta2: 0.99, eps: 1e-8, weight_decay: 0.1 }
    }
}

/// AdamW over named parameters.
#[derive(Debug)]
pub struct AdamW {
    config: AdamWConfig,
    vars: Vec<(String, Var, bool)>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    step: u64,
}

impl AdamW {
    /// An optimiser of `vars`; those whose names end in `.w` or are `tok` decay.
    pub fn new(vars: &[(String, Var)], config: AdamWConfig) -> Result<AdamW> {
        let mut m = Vec::with_capacity(vars.len());
        let mut v = Vec::with_capacity(vars.len());
        for (_, var) in vars {
            m.push(var.as_tensor().zeros_like()?);
            v.push(var.as_tensor().zeros_like()?);
        }
        let vars = vars
            .iter()
            .map(|(n, var)| (n.clone(), var.clone(), n.ends_with(".w") || n == "tok"))
            .collect();
        Ok(AdamW { config, vars, m, v, step: 0 })
    }

    /// Steps taken.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// Sets the step size (for warm-up and decay).
    pub fn set_lr(&mut self, lr: f64) {
        self.config.lr = lr;
    }

    /// One update from `grads`; parameters without a gradient keep their value.
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.step += 1;
        let c = self.config;
        let t = self.step as i32;
        let (fix1, fix2) = (1.0 - c.beta1.powi(t), 1.0 - c.beta2.powi(t));
        for (i, (_, var, decays)) in self.vars.iter().enumerate() {
            let Some(g) = grads.get(var.as_tensor()) else { continue };
            // Detached: the moments are state, not part of any graph (else each one would
            // hold every earlier step's tensors alive).
            let g = g.detach();
            let m = ((&self.m[i] * c.beta1)? + (&g * (1.0 - c.beta1))?)?.detach();
            let v = ((&self.v[i] * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?.detach();
            let update = ((&m / fix1)? / ((&v / fix2)?.sqrt()? + c.eps)?)?;
            let theta = var.as_tensor().detach();
            let theta = if *decays { (theta * (1.0 - c.lr * c.weight_decay))? } else { theta };
            var.set(&(theta - (update * c.lr)?)?)?;
            self.m[i] = m;
            self.v[i] = v;
        }
        Ok(())
    }

    /// The state as named tensors (`m.<name>`, `v.<name>`) and the step count.
    pub fn state(&self) -> (HashMap<String, Tensor>, u64) {
        let mut out = HashMap::with_capacity(2 * self.vars.len());
        for (i, (name, _, _)) in self.vars.iter().enumerate() {
            out.insert(format!("m.{name}"), self.m[i].clone());
            out.insert(format!("v.{name}"), self.v[i].clone());
        }
        (out, self.step)
    }

    /// Restores the state [`state`](AdamW::state) gave.
    pub fn restore(&mut self, state: &HashMap<String, Tensor>, step: u64) -> Result<()> {
        for (i, (name, var, _)) in self.vars.iter().enumerate() {
            for (prefix, slot) in [("m", &mut self.m[i]), ("v", &mut self.v[i])] {
                let t = state.get(&format!("{prefix}.{name}")).ok_or_else(|| {
                    Error::invalid("optimiser state", format!("no {prefix}.{name}"))
                })?;
                if t.dims() != var.dims() {
                    return Err(Error::invalid(
                        "optimiser state",
                        format!("{prefix}.{name} is {:?}, not {:?}", t.dims(), var.dims()),
                    ));
                }
                *slot = t.to_device(var.device())?;
            }
        }
        self.step = step;
        Ok(())
    }
}
