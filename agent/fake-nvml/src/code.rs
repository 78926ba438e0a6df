//! NVML return codes: the names fixtures use for them and the text `nvmlErrorString` gives.

use std::ffi::CStr;

use nvml_wrapper_sys::bindings::*;

pub(crate) const SUCCESS: nvmlReturn_t = nvmlReturn_enum_NVML_SUCCESS;
pub(crate) const UNINITIALIZED: nvmlReturn_t = nvmlReturn_enum_NVML_ERROR_UNINITIALIZED;
pub(crate) const INVALID_ARGUMENT: nvmlReturn_t = nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT;
pub(crate) const NOT_SUPPORTED: nvmlReturn_t = nvmlReturn_enum_NVML_ERROR_NOT_SUPPORTED;
pub(crate) const NOT_FOUND: nvmlReturn_t = nvmlReturn_enum_NVML_ERROR_NOT_FOUND;
pub(crate) const INSUFFICIENT_SIZE: nvmlReturn_t = nvmlReturn_enum_NVML_ERROR_INSUFFICIENT_SIZE;
pub(crate) const DRIVER_NOT_LOADED: nvmlReturn_t = nvmlReturn_enum_NVML_ERROR_DRIVER_NOT_LOADED;
pub(crate) const GPU_IS_LOST: nvmlReturn_t = nvmlReturn_enum_NVML_ERROR_GPU_IS_LOST;
pub(crate) const ARGUMENT_VERSION_MISMATCH: nvmlReturn_t =
    nvmlReturn_enum_NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
pub(crate) const UNKNOWN: nvmlReturn_t = nvmlReturn_enum_NVML_ERROR_UNKNOWN;

/// Every code NVML defines: its name without the `NVML_ERROR_` prefix, and NVIDIA's text for it.
const CODES: &[(nvmlReturn_t, &str, &CStr)] = &[
    (SUCCESS, "SUCCESS", c"Success"),
    (UNINITIALIZED, "UNINITIALIZED", c"Uninitialized"),
    (INVALID_ARGUMENT, "INVALID_ARGUMENT", c"Invalid Argument"),
    (NOT_SUPPORTED, "NOT_SUPPORTED", c"Not Supported"),
    (
        nvmlReturn_enum_NVML_ERROR_NO_PERMISSION,
        "NO_PERMISSION",
        c"Insufficient Permissions",
    ),
    (
        nvmlReturn_enum_NVML_ERROR_ALREADY_INITIALIZED,
        "ALREADY_INITIALIZED",
        c"Already Initialized",
    ),
    (NOT_FOUND, "NOT_FOUND", c"Not Found"),
    (INSUFFICIENT_SIZE, "INSUFFICIENT_SIZE", c"Insufficient Size"),
    (
        nvmlReturn_enum_NVML_ERROR_INSUFFICIENT_POWER,
        "INSUFFICIENT_POWER",
        c"Insufficient External Power",
    ),
    (DRIVER_NOT_LOADED, "DRIVER_NOT_LOADED", c"Driver Not Loaded"),
    (nvmlReturn_enum_NVML_ERROR_TIMEOUT, "TIMEOUT", c"Timeout"),
    (
        nvmlReturn_enum_NVML_ERROR_IRQ_ISSUE,
        "IRQ_ISSUE",
        c"Interrupt Request Issue",
    ),
    (
        nvmlReturn_enum_NVML_ERROR_LIBRARY_NOT_FOUND,
        "LIBRARY_NOT_FOUND",
        c"NVML Shared Library Not Found",
    ),
    (
        nvmlReturn_enum_NVML_ERROR_FUNCTION_NOT_FOUND,
        "FUNCTION_NOT_FOUND",
        c"Function Not Found",
    ),
    (
        nvmlReturn_enum_NVML_ERROR_CORRUPTED_INFOROM,
        "CORRUPTED_INFOROM",
        c"Corrupted infoROM",
    ),
    (GPU_IS_LOST, "GPU_IS_LOST", c"GPU is lost"),
    (
        nvmlReturn_enum_NVML_ERROR_RESET_REQUIRED,
        "RESET_REQUIRED",
        c"GPU requires restart",
    ),
    (
        nvmlReturn_enum_NVML_ERROR_OPERATING_SYSTEM,
        "OPERATING_SYSTEM",
        c"The operating system has blocked the request.",
    ),
    (
        nvmlReturn_enum_NVML_ERROR_LIB_RM_VERSION_MISMATCH,
        "LIB_RM_VERSION_MISMATCH",
        c"RM has detected an NVML/RM version mismatch.",
    ),
    (
        nvmlReturn_enum_NVML_ERROR_IN_USE,
        "IN_USE",
        c"In use by another client",
    ),
    (
        nvmlReturn_enum_NVML_ERROR_MEMORY,
        "MEMORY",
        c"Insufficient Memory",
    ),
    (nvmlReturn_enum_NVML_ERROR_NO_DATA, "NO_DATA", c"No data"),
    (
        nvmlReturn_enum_NVML_ERROR_VGPU_ECC_NOT_SUPPORTED,
        "VGPU_ECC_NOT_SUPPORTED",
        c"The requested vgpu operation is not available on target device, because ECC is enabled",
    ),
    (
        nvmlReturn_enum_NVML_ERROR_INSUFFICIENT_RESOURCES,
        "INSUFFICIENT_RESOURCES",
        c"Ran out of critical resources, other than memory",
    ),
    (
        nvmlReturn_enum_NVML_ERROR_FREQ_NOT_SUPPORTED,
        "FREQ_NOT_SUPPORTED",
        c"The requested frequency is not supported",
    ),
    (
        ARGUMENT_VERSION_MISMATCH,
        "ARGUMENT_VERSION_MISMATCH",
        c"Argument version mismatch",
    ),
    (
        nvmlReturn_enum_NVML_ERROR_DEPRECATED,
        "DEPRECATED",
        c"Deprecated",
    ),
    (
        nvmlReturn_enum_NVML_ERROR_NOT_READY,
        "NOT_READY",
        c"The system is not ready",
    ),
    (
        nvmlReturn_enum_NVML_ERROR_GPU_NOT_FOUND,
        "GPU_NOT_FOUND",
        c"GPU not found",
    ),
    (
        nvmlReturn_enum_NVML_ERROR_INVALID_STATE,
        "INVALID_STATE",
        c"Invalid state",
    ),
    (
        nvmlReturn_enum_NVML_ERROR_RESET_TYPE_NOT_SUPPORTED,
        "RESET_TYPE_NOT_SUPPORTED",
        c"Reset type not supported",
    ),
    (UNKNOWN, "UNKNOWN", c"Unknown Error"),
];

/// The error code a fixture names, as `GPU_IS_LOST` or `NVML_ERROR_GPU_IS_LOST`. `SUCCESS` is not
/// an error and is refused.
pub(crate) fn error_from_name(name: &str) -> Option<nvmlReturn_t> {
    let name = name.strip_prefix("NVML_ERROR_").unwrap_or(name);
    CODES
        .iter()
        .find(|(code, known, _)| *code != SUCCESS && *known == name)
        .map(|(code, _, _)| *code)
}

/// The names `error_from_name` accepts, for error messages.
pub(crate) fn error_names() -> impl Iterator<Item = &'static str> {
    CODES
        .iter()
        .filter(|(code, _, _)| *code != SUCCESS)
        .map(|(_, name, _)| *name)
}

/// NVIDIA's text for a code; "Unknown Error" for codes NVML does not define, as NVML does.
pub(crate) fn message(code: nvmlReturn_t) -> &'static CStr {
    CODES
        .iter()
        .find(|(known, _, _)| *known == code)
        .map_or(c"Unknown Error", |(_, _, message)| *message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_with_or_without_the_prefix() {
        assert_eq!(error_from_name("GPU_IS_LOST"), Some(GPU_IS_LOST));
        assert_eq!(error_from_name("NVML_ERROR_GPU_IS_LOST"), Some(GPU_IS_LOST));
        assert_eq!(
            error_from_name("DRIVER_NOT_LOADED"),
            Some(DRIVER_NOT_LOADED)
        );
        assert_eq!(error_from_name("SUCCESS"), None);
        assert_eq!(error_from_name("gpu_is_lost"), None);
    }

    #[test]
    fn every_code_is_listed_once() {
        for (index, (code, name, _)) in CODES.iter().enumerate() {
            let later = &CODES[index + 1..];
            assert!(
                later.iter().all(|(other, _, _)| other != code),
                "{name} twice"
            );
        }
        assert_eq!(error_names().count(), CODES.len() - 1);
    }

    #[test]
    fn messages_match_nvidia_text() {
        assert_eq!(message(GPU_IS_LOST), c"GPU is lost");
        assert_eq!(message(NOT_SUPPORTED), c"Not Supported");
        assert_eq!(message(NOT_FOUND), c"Not Found");
        assert_eq!(message(UNKNOWN), c"Unknown Error");
        assert_eq!(message(DRIVER_NOT_LOADED), c"Driver Not Loaded");
        assert_eq!(message(12345), c"Unknown Error");
    }
}
