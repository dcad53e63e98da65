//! Free TCP ports on 127.0.0.1 for servers a test starts itself (a Sentinel set, a
//! Redis Cluster): bound by the OS, then released for the server to take.

/// `n` distinct ports free at the time of the call.
pub fn free(n: usize) -> Vec<u16> {
    let listeners: Vec<_> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("a free port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("bound address").port())
        .collect()
}
