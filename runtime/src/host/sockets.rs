//! `wasi:sockets`: a connector reaches the network only through the `http` import, so creating
//! a socket is refused, before any is opened in the host (an open socket is a file descriptor of
//! the service's, and a guest could otherwise hold hundreds). Each attempt is a call: it counts
//! against the host-call budget and is written to the record as a `wasi-socket` denial. These
//! functions replace wasmtime-wasi's own in the linker (see `Sandbox::new`).

use wasmtime::component::Resource;
use wasmtime_wasi::p2::bindings::sockets::network::{self, ErrorCode, IpAddressFamily};
use wasmtime_wasi::p2::bindings::sockets::{tcp_create_socket, udp_create_socket};
use wasmtime_wasi::p2::{SocketError, SocketResult, TcpSocket, UdpSocket};

use super::{HostState, lock};
use crate::record::{DenialKind, HostCall};

impl HostState {
    fn refuse_socket(&mut self, protocol: &str, family: IpAddressFamily) -> SocketError {
        let mut j = lock(&self.cx.journal);
        if let Err(stop) = j.begin_call() {
            return SocketError::trap(stop);
        }
        let family = match family {
            IpAddressFamily::Ipv4 => "ipv4",
            IpAddressFamily::Ipv6 => "ipv6",
        };
        let target = format!("{protocol} ({family})");
        let why = "WASI sockets are not available to connectors; use the http import".to_string();
        j.deny(DenialKind::WasiSocket, &target, &why);
        let call = HostCall {
            interface: crate::record::Interface::WasiSockets,
            operation: format!("create-{protocol}-socket"),
            target,
            error: Some("denied".into()),
            error_message: Some(why),
            ..HostCall::default()
        };
        match j.record_call(call) {
            Ok(()) => ErrorCode::AccessDenied.into(),
            Err(stop) => SocketError::trap(stop),
        }
    }
}

impl tcp_create_socket::Host for HostState {
    fn create_tcp_socket(&mut self, family: IpAddressFamily) -> SocketResult<Resource<TcpSocket>> {
        Err(self.refuse_socket("tcp", family))
    }
}

impl udp_create_socket::Host for HostState {
    async fn create_udp_socket(&mut self, family: IpAddressFamily) -> SocketResult<Resource<UdpSocket>> {
        Err(self.refuse_socket("udp", family))
    }
}

/// Needed by the two interfaces above (their errors are this interface's type); it turns the
/// refusal into the guest's `error-code` and lets a trap through.
impl network::Host for HostState {
    fn convert_error_code(&mut self, error: SocketError) -> wasmtime::Result<ErrorCode> {
        error.downcast()
    }

    fn network_error_code(&mut self, err: Resource<wasmtime::Error>) -> wasmtime::Result<Option<ErrorCode>> {
        Ok(self.table.get(&err)?.downcast_ref::<std::io::Error>().map(ErrorCode::from))
    }
}

impl network::HostNetwork for HostState {
    fn drop(&mut self, this: Resource<network::Network>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}
