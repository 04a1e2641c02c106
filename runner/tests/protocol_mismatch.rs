//! The runner's side of the protocol handshake: a host whose hello speaks another protocol is not
//! served, and is told both versions and what to update. (The host's side, a host refusing a
//! runner of another protocol, is `runner/runtime/tests/env_host.rs`.)

use dylib_dev::reload::ReloadServer;
use dylib_dev::templates::DYLIB_DEV_VERSION;
use dylib_dev_runtime::protocol::{self, Hello, ToHost, ToRunner};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

#[test]
fn a_host_speaking_another_protocol_is_refused_with_both_versions() {
    let base = tempfile::tempdir().unwrap();
    let mut server = ReloadServer::start_in(base.path()).unwrap();
    let env = server.host_env(&[]).unwrap();
    let var = |key: &str| env.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    // Hosts are told the runner's protocol, so they can refuse it too.
    assert_eq!(
        var(protocol::ENV_PROTOCOL),
        Some(protocol::PROTOCOL_VERSION.to_string().into())
    );

    let other = protocol::PROTOCOL_VERSION + 1;
    let mut host = UnixStream::connect(var(protocol::ENV_SOCKET).unwrap()).unwrap();
    host.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let hello = ToRunner::Hello(Hello {
        protocol: other,
        pid: std::process::id(),
        lib: "logic".into(),
        version: 0,
        hash: "blake3:00".into(),
        save: true,
    });
    host.write_all(hello.encode().as_bytes()).unwrap();

    assert!(
        server
            .wait_for_host("logic", Duration::from_secs(3))
            .is_err(),
        "a host of protocol {other} was served"
    );
    let mut line = String::new();
    BufReader::new(&host).read_line(&mut line).unwrap();
    let Ok(ToHost::Refused(refused)) = ToHost::decode(&line) else {
        panic!("not refused: {line:?}");
    };
    assert_eq!(
        refused.reason,
        protocol::host_protocol_mismatch(other, DYLIB_DEV_VERSION)
    );
    assert!(
        refused
            .reason
            .contains(&format!("speaks protocol {}", protocol::PROTOCOL_VERSION)),
        "{}",
        refused.reason
    );
}
