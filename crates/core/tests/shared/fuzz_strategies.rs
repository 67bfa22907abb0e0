//! What the property-based fuzz tests of every test binary share: the
//! fixed-seed configuration of the short pass and generators of arbitrary
//! text and JSON. Included by each binary's root (`#[path]`); each binary
//! uses a part of it.
#![allow(dead_code)]

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use serde_json::{Number, Value};

/// The seed of the short pass `cargo test` runs.
pub const SEED: u64 = 0x50f7_9403;

/// A fixed-seed configuration: the same cases on every run, nothing written.
pub fn fixed(cases: u32) -> Config {
    Config { cases, failure_persistence: None, rng_seed: RngSeed::Fixed(SEED), ..Config::default() }
}

/// Short strings like ids, arbitrary Unicode, and control characters.
pub fn text() -> impl Strategy<Value = String> + Clone {
    prop_oneof!["[a-z0-9_.~-]{0,10}", any::<String>(), "[\\x00-\\x1f\"\\\\\u{7f}\u{fffd}\u{10ffff}]{0,6}",]
}

/// Any JSON value, up to a few levels deep.
pub fn json_value() -> impl Strategy<Value = Value> + Clone {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| Number::from_f64(f).map_or(Value::Null, Value::Number)),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(text(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
