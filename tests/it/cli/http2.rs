//! Against a server that offers HTTP/2 through ALPN, as a real data centre does over HTTPS, the
//! client takes it: every request over HTTP/2, multiplexed on few connections.

use crate::support::*;

#[test]
fn every_request_goes_over_http2_when_the_server_offers_it() {
    let world = World::tls(quick_scenario());
    let tenants: Vec<(String, String)> = (0..12)
        .map(|i| {
            (
                format!("5ca1ab1e-0000-4000-8000-{:012x}", i + 1),
                format!("t{i}"),
            )
        })
        .collect();
    let refs: Vec<(&str, &str)> = tenants
        .iter()
        .map(|(id, name)| (id.as_str(), name.as_str()))
        .collect();
    let job = world.job(&job_text(&refs, "concurrency: 6\n"));
    let mut cmd = world.run(&job);
    world.trust_ca(&mut cmd);
    cmd.assert().success();

    let stats = world.stats();
    let requests = stats.token_requests
        + stats.create_requests
        + stats.stored_list_requests
        + stats.download_requests
        + stats.delete_requests;
    assert_eq!(stats.reports.len(), 12);
    assert_eq!(stats.http2_requests, requests, "{stats:?}");
    // HTTP/2 multiplexes the concurrent requests; new connections are not per request.
    assert!(stats.connections <= 6, "{} connections", stats.connections);
    assert!(world.out().join("SHA256SUMS").is_file());
}

#[test]
fn a_server_whose_certificate_is_not_trusted_is_refused_before_anything_is_written() {
    let world = World::tls(quick_scenario());
    let job = world.job(&job_text(&[(ACME, "Acme")], ""));
    // No `trust_ca`: the test CA is unknown to the system's store.
    let output = world.run(&job).assert().failure().get_output().clone();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("TLS certificate is not trusted") && stderr.contains("SSL_CERT_FILE"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "said once: {stderr}");
    // Not retried: a certificate does not become trusted by asking again.
    assert_eq!(world.stats().connections, 1);
    assert!(
        !stderr.contains(world.sandbox().client_secret()),
        "{stderr}"
    );
    assert_eq!(world.stats().create_requests, 0);
    assert!(!world.out().join("SHA256SUMS").exists());
}
