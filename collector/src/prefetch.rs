//! Cache prefetch hints for the collection loop.
//!
//! The loop visits thousands of heap-allocated cgroups once a second, long
//! enough for each to have left the cache; between two of them the kernel
//! spends microseconds rendering the cgroup's files. Asking for the next
//! cgroups' lines before reading this one's files overlaps the two. A hint
//! changes no behaviour: on other architectures these do nothing.

/// Asks the CPU to load every cache line of `value`.
pub(crate) fn prefetch<T: ?Sized>(value: &T) {
    let start = (value as *const T).cast::<u8>();
    let len = std::mem::size_of_val(value);
    let mut offset = 0;
    while offset < len {
        prefetch_line(start.wrapping_add(offset));
        offset += 64;
    }
}

/// Asks the CPU to load the cache line holding `ptr`. The pointer is not
/// dereferenced.
pub(crate) fn prefetch_line<T>(ptr: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint that never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(ptr.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = ptr;
}
