//! Device handles: opaque non-null pointers that carry a device index and are never dereferenced.
//!
//! NVML's `nvmlDevice_t` points at driver memory; callers only pass it back. Here the address
//! itself is the data: a tag in the upper bits tells a physical device from a MIG instance, so a
//! stale, forged or foreign pointer is recognised and refused instead of read.

use std::ptr;

use nvml_wrapper_sys::bindings::{nvmlDevice_st, nvmlDevice_t};

/// Everything above the low 16 bits: the tag, with nothing set above it.
const TAG_MASK: usize = !0xFFFF;
/// "NV": a physical device; the low 16 bits are its index.
const DEVICE_TAG: usize = 0x4E56_0000;
/// "MI": a MIG instance; bits 8..16 are the parent's index, bits 0..8 the instance.
const MIG_TAG: usize = 0x4D49_0000;

/// What a handle names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Handle {
    Device(usize),
    Mig { parent: usize, instance: usize },
}

impl Handle {
    /// The handle of a device; `None` when the index does not fit (the fixture caps devices).
    pub(crate) fn device(index: usize) -> Option<nvmlDevice_t> {
        (index <= 0xFFFF).then(|| encode(DEVICE_TAG | index))
    }

    /// The handle of a MIG instance, distinct from every device handle.
    pub(crate) fn mig(parent: usize, instance: usize) -> Option<nvmlDevice_t> {
        (parent <= 0xFF && instance <= 0xFF).then(|| encode(MIG_TAG | parent << 8 | instance))
    }

    /// What `handle` names; `None` for null or a pointer this library did not hand out.
    pub(crate) fn decode(handle: nvmlDevice_t) -> Option<Self> {
        let address = handle.addr();
        match address & TAG_MASK {
            DEVICE_TAG => Some(Self::Device(address & 0xFFFF)),
            MIG_TAG => Some(Self::Mig {
                parent: (address >> 8) & 0xFF,
                instance: address & 0xFF,
            }),
            _ => None,
        }
    }
}

fn encode(address: usize) -> nvmlDevice_t {
    ptr::without_provenance_mut::<nvmlDevice_st>(address)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_round_trip_and_never_collide() {
        let device = Handle::device(3).unwrap();
        let mig = Handle::mig(3, 0).unwrap();
        assert!(!device.is_null() && !mig.is_null());
        assert_ne!(device, mig);
        assert_eq!(Handle::decode(device), Some(Handle::Device(3)));
        assert_eq!(
            Handle::decode(mig),
            Some(Handle::Mig {
                parent: 3,
                instance: 0
            })
        );
        assert_ne!(Handle::device(0), Handle::device(1));
    }

    #[test]
    fn foreign_pointers_are_refused() {
        assert_eq!(Handle::decode(ptr::null_mut()), None);
        assert_eq!(Handle::decode(encode(0x1000)), None);
        assert_eq!(Handle::decode(encode(1 << 31 | DEVICE_TAG | 1)), None);
        let mut real = 0_u8;
        assert_eq!(Handle::decode(ptr::from_mut(&mut real).cast()), None);
        assert_eq!(Handle::device(0x1_0000), None);
        assert_eq!(Handle::mig(0x100, 0), None);
    }
}
