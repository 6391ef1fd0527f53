// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
// A plain Java client with the JVM's defaults: on a host with IPv6 its
// Socket is a dual-stack AF_INET6 socket, and an IPv4 peer is reached at
// its IPv4-mapped address. Sends one line, half-closes, prints the reply.
// Usage: java EchoClient.java HOST PORT
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;

public class EchoClient {
	public static void main(String[] args) throws Exception {
		byte[] line = "hello from the jvm\n".getBytes(StandardCharsets.US_ASCII);

		try (Socket s = new Socket()) {
			s.connect(new InetSocketAddress(args[0], Integer.parseInt(args[1])), 10000);
			OutputStream out = s.getOutputStream();
			InputStream in = s.getInputStream();
			out.write(line);
			s.shutdownOutput();
			System.out.print(new String(in.readAllBytes(), StandardCharsets.US_ASCII));
		}
	}
}
