//! The caller's out-parameters: each raw pointer is checked for null once, when it is wrapped,
//! and written through the wrapper only, so the exported functions hold no pointer arithmetic.

use std::ffi::{CStr, c_char, c_uint};
use std::marker::PhantomData;
use std::mem::offset_of;
use std::ptr::{self, NonNull};

use nvml_wrapper_sys::bindings::{
    nvmlConfComputeGpuAttestationReport_t, nvmlMemory_v2_t, nvmlReturn_t,
    nvmlSystemConfComputeSettings_v1_t,
};

use crate::code::{INSUFFICIENT_SIZE, INVALID_ARGUMENT};

/// Where the caller wants one `T` written.
#[derive(Debug)]
pub(crate) struct Out<'a, T> {
    target: NonNull<T>,
    caller: PhantomData<&'a mut T>,
}

impl<T> Out<'_, T> {
    /// Wraps an out-pointer; a null one is `NVML_ERROR_INVALID_ARGUMENT`, as in NVML.
    ///
    /// # Safety
    ///
    /// A non-null `target` is aligned and valid for one write of `T` while the wrapper lives.
    pub(crate) unsafe fn new(target: *mut T) -> Result<Self, nvmlReturn_t> {
        let target = NonNull::new(target).ok_or(INVALID_ARGUMENT)?;
        Ok(Self {
            target,
            caller: PhantomData,
        })
    }

    pub(crate) fn set(self, value: T) {
        // SAFETY: `new`'s contract: aligned, non-null and valid for one write of `T`. `write`
        // does not read or drop the old contents, which may be uninitialised.
        unsafe { self.target.as_ptr().write(value) }
    }
}

/// An NVML struct that begins with the `version` its caller sets before the call.
pub(crate) trait Versioned: Copy {}

impl Versioned for nvmlMemory_v2_t {}
impl Versioned for nvmlSystemConfComputeSettings_v1_t {}

// `InOut::version` reads the first `c_uint` of the struct: it must be `version`.
const _: () = assert!(offset_of!(nvmlMemory_v2_t, version) == 0);
const _: () = assert!(offset_of!(nvmlSystemConfComputeSettings_v1_t, version) == 0);

/// A versioned struct: the library reads its `version`, then fills it in.
#[derive(Debug)]
pub(crate) struct InOut<'a, T: Versioned> {
    target: NonNull<T>,
    caller: PhantomData<&'a mut T>,
}

impl<T: Versioned> InOut<'_, T> {
    /// Wraps an in-out pointer; a null one is `NVML_ERROR_INVALID_ARGUMENT`.
    ///
    /// # Safety
    ///
    /// A non-null `target` is aligned and valid for reads and writes of `T` while the wrapper
    /// lives, and its `version` field is initialised (the other fields need not be).
    pub(crate) unsafe fn new(target: *mut T) -> Result<Self, nvmlReturn_t> {
        let target = NonNull::new(target).ok_or(INVALID_ARGUMENT)?;
        Ok(Self {
            target,
            caller: PhantomData,
        })
    }

    /// The version the caller set.
    pub(crate) fn version(&self) -> c_uint {
        // SAFETY: `new`'s contract: `version` is initialised and readable; it is the struct's
        // first field (asserted above), so the struct's address is its address and alignment.
        unsafe { self.target.cast::<c_uint>().as_ptr().read() }
    }

    pub(crate) fn set(self, value: T) {
        // SAFETY: `new`'s contract: aligned and valid for writes of `T`; `write` does not read
        // or drop the old contents, and `T: Copy` has no drop anyway.
        unsafe { self.target.as_ptr().write(value) }
    }
}

/// The attestation report struct: the caller puts the nonce in, the library fills the rest.
#[derive(Debug)]
pub(crate) struct ReportInOut<'a> {
    target: NonNull<nvmlConfComputeGpuAttestationReport_t>,
    caller: PhantomData<&'a mut nvmlConfComputeGpuAttestationReport_t>,
}

impl ReportInOut<'_> {
    /// Wraps the caller's struct; a null one is `NVML_ERROR_INVALID_ARGUMENT`.
    ///
    /// # Safety
    ///
    /// A non-null `target` is aligned and valid for reads and writes of the struct while the
    /// wrapper lives, and its `nonce` field is initialised (the other fields need not be).
    pub(crate) unsafe fn new(
        target: *mut nvmlConfComputeGpuAttestationReport_t,
    ) -> Result<Self, nvmlReturn_t> {
        let target = NonNull::new(target).ok_or(INVALID_ARGUMENT)?;
        Ok(Self {
            target,
            caller: PhantomData,
        })
    }

    /// The nonce the caller asks the GPU to sign.
    pub(crate) fn nonce(&self) -> [u8; 32] {
        // SAFETY: `new`'s contract: the struct is readable and `nonce` initialised; the field
        // is reached with `&raw const`, so no reference to the (partly uninitialised) struct is
        // made, and a `[u8; 32]` field is aligned wherever its struct is.
        unsafe { (&raw const (*self.target.as_ptr()).nonce).read() }
    }

    pub(crate) fn set(self, value: &nvmlConfComputeGpuAttestationReport_t) {
        // SAFETY: `new`'s contract: aligned and valid for writes of the struct; `write` does
        // not read or drop the old contents, and the struct is `Copy`.
        unsafe { self.target.as_ptr().write(*value) }
    }
}

/// The caller's character buffer of `length` bytes, for a NUL-terminated string.
#[derive(Debug)]
pub(crate) struct OutStr<'a> {
    buffer: NonNull<c_char>,
    length: usize,
    caller: PhantomData<&'a mut [c_char]>,
}

impl OutStr<'_> {
    /// Wraps a string buffer; a null one is `NVML_ERROR_INVALID_ARGUMENT`.
    ///
    /// # Safety
    ///
    /// A non-null `buffer` is valid for writes of `length` bytes while the wrapper lives.
    pub(crate) unsafe fn new(buffer: *mut c_char, length: c_uint) -> Result<Self, nvmlReturn_t> {
        let buffer = NonNull::new(buffer).ok_or(INVALID_ARGUMENT)?;
        let length = usize::try_from(length).map_err(|_| INVALID_ARGUMENT)?;
        Ok(Self {
            buffer,
            length,
            caller: PhantomData,
        })
    }

    /// Copies `value` and its terminator; `NVML_ERROR_INSUFFICIENT_SIZE`, with the buffer left
    /// untouched, when they do not fit.
    pub(crate) fn set(self, value: &CStr) -> Result<(), nvmlReturn_t> {
        let bytes = value.to_bytes_with_nul();
        if bytes.len() > self.length {
            return Err(INSUFFICIENT_SIZE);
        }
        // SAFETY: `new`'s contract makes `buffer` valid for `length` bytes and we copy no more
        // than that; the source is our own `CStr`, which cannot overlap the caller's buffer.
        unsafe {
            ptr::copy_nonoverlapping(
                bytes.as_ptr().cast::<c_char>(),
                self.buffer.as_ptr(),
                bytes.len(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_fit_with_their_terminator_or_not_at_all() {
        let mut buffer = [0x55 as c_char; 6];
        // SAFETY: the buffer is 6 bytes and outlives the wrapper.
        let out = unsafe { OutStr::new(buffer.as_mut_ptr(), 6) }.unwrap();
        assert_eq!(out.set(c"abcdef"), Err(INSUFFICIENT_SIZE));
        assert!(buffer.iter().all(|&byte| byte == 0x55));
        // SAFETY: as above.
        let out = unsafe { OutStr::new(buffer.as_mut_ptr(), 6) }.unwrap();
        assert_eq!(out.set(c"abcde"), Ok(()));
        // SAFETY: `set` wrote a terminated string into the buffer.
        assert_eq!(unsafe { CStr::from_ptr(buffer.as_ptr()) }, c"abcde");
    }

    #[test]
    fn null_pointers_are_invalid_arguments() {
        // SAFETY: null is allowed and never written.
        assert_eq!(
            unsafe { OutStr::new(ptr::null_mut(), 8) }.unwrap_err(),
            INVALID_ARGUMENT
        );
        // SAFETY: as above.
        assert_eq!(
            unsafe { Out::<u32>::new(ptr::null_mut()) }.unwrap_err(),
            INVALID_ARGUMENT
        );
        // SAFETY: as above.
        let in_out = unsafe { InOut::<nvmlMemory_v2_t>::new(ptr::null_mut()) };
        assert_eq!(in_out.unwrap_err(), INVALID_ARGUMENT);
    }
}
