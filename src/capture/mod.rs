//! Capture back ends (the kernel boundary). Actors in `crate::actors` use
//! them; nothing else sees kernel types.
pub mod ebpf;
pub mod libpcap;
pub mod packets;
pub mod sockets;
