#![no_main]
//! The lab's inventory ConfigMap as read back from the cluster: reading and re-rendering it must not panic.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        let mut inventory = seclab::cluster::inventory::Inventory::new("lab", "ns");
        inventory.read(&value);
        let _ = inventory.manifest("lab");
    }
});
