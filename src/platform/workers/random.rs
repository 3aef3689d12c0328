//! Random ids without a call into JavaScript per request: a per-isolate
//! generator (SplitMix64) seeded once from `crypto.getRandomValues`.
//!
//! For request, trace and span ids only, which must be unique, not secret;
//! anything secret (API keys) is made elsewhere from the OS generator.

use std::cell::Cell;

thread_local! {
    static STATE: Cell<Option<u64>> = const { Cell::new(None) };
}

fn seed() -> u64 {
    let mut bytes = [0u8; 8];
    let crypto = js_sys::Reflect::get(&js_sys::global(), &"crypto".into())
        .ok()
        .and_then(|crypto| wasm_bindgen::JsCast::dyn_into::<web_sys::Crypto>(crypto).ok());
    let seeded = crypto
        .map(|crypto| crypto.get_random_values_with_u8_array(&mut bytes).is_ok())
        .unwrap_or(false);
    if !seeded {
        // Without crypto (never on Workers): time and Math.random.
        let fallback = js_sys::Date::now().to_bits() ^ (js_sys::Math::random() * 1e18) as u64;
        bytes = fallback.to_le_bytes();
    }
    u64::from_le_bytes(bytes)
}

fn next() -> u64 {
    STATE.with(|state| {
        let current = state.get().unwrap_or_else(seed);
        let advanced = current.wrapping_add(0x9e37_79b9_7f4a_7c15);
        state.set(Some(advanced));
        let mut z = advanced;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    })
}

/// Fill `bytes` with generator output.
pub fn fill(bytes: &mut [u8]) {
    for chunk in bytes.chunks_mut(8) {
        for (byte, source) in chunk.iter_mut().zip(next().to_le_bytes()) {
            *byte = source;
        }
    }
}

/// A version 4 UUID, as `crypto.randomUUID()` would give.
pub fn uuid_v4() -> String {
    let mut bytes = [0u8; 16];
    fill(&mut bytes);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = base16ct::lower::encode_string(&bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}
