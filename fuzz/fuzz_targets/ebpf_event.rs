//! Ring-buffer records from the eBPF program: their strings (paths,
//! command lines, addresses) are written by monitored processes. Short or
//! unknown records are refused; strings come from the record and never
//! exceed it (a byte that is not UTF-8 becomes one 3-byte replacement).
#![no_main]
use daisi::capture::ebpf::{parse, CaptureEvent};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(e) = parse(data) else {
        return;
    };
    let bound = data.len() * 3;
    match &e {
        CaptureEvent::Exec(x) => {
            let strings = x.comm.len()
                + x.parent_comm.len()
                + x.path.as_ref().map_or(0, String::len)
                + x.args.iter().map(String::len).sum::<usize>();
            assert!(strings <= bound, "{e:?}");
        }
        CaptureEvent::Fork { comm, .. } => assert!(comm.len() <= bound, "{e:?}"),
        CaptureEvent::Args(a) => assert!(format!("{:?}", a.what).len() <= bound + 256, "{e:?}"),
        CaptureEvent::Syscall { .. } | CaptureEvent::Exit { .. } => {}
    }
});
