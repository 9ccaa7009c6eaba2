//! A minimal blocking SOCKS5 client for the end-to-end tests, and a one-shot HTTP GET.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A no-auth SOCKS5 CONNECT to the IPv4 `dest`; the open tunnel, or the reply code (0xEE when
/// the proxy itself cannot be reached).
pub fn socks_connect(socks: SocketAddr, dest: SocketAddr) -> Result<TcpStream, u8> {
    let mut c = TcpStream::connect(socks).map_err(|_| 0xEE)?;
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    c.write_all(b"\x05\x01\x00").unwrap();
    let mut b = [0u8; 2];
    c.read_exact(&mut b).unwrap();
    if b[1] != 0 {
        return Err(b[1]);
    }
    let SocketAddr::V4(v4) = dest else {
        panic!("socks_connect takes IPv4 destinations")
    };
    let mut req = b"\x05\x01\x00\x01".to_vec();
    req.extend_from_slice(&v4.ip().octets());
    req.extend_from_slice(&v4.port().to_be_bytes());
    c.write_all(&req).unwrap();
    let mut r = [0u8; 10];
    c.read_exact(&mut r).unwrap();
    if r[1] == 0 {
        Ok(c)
    } else {
        Err(r[1])
    }
}

/// `GET /hello` over an open tunnel; the whole answer as text.
pub fn http_hello(mut c: TcpStream) -> String {
    c.write_all(b"GET /hello HTTP/1.0\r\n\r\n").unwrap();
    let mut out = Vec::new();
    c.read_to_end(&mut out).unwrap();
    String::from_utf8_lossy(&out).into_owned()
}
