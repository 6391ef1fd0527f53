// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
// The demo's Java client, with the JVM's defaults: on a host with IPv6 its
// sockets are dual-stack AF_INET6 ones, and an IPv4 server is reached at its
// IPv4-mapped address (::ffff:10.77.0.2). Prints the HTTP status of a GET.
// Usage: java HttpStatus.java URL
import java.net.HttpURLConnection;
import java.net.URL;

public class HttpStatus {
	public static void main(String[] args) throws Exception {
		HttpURLConnection c = (HttpURLConnection) new URL(args[0]).openConnection();

		c.setConnectTimeout(5000);
		c.setReadTimeout(5000);
		System.out.println(c.getResponseCode());
		c.disconnect();
	}
}
