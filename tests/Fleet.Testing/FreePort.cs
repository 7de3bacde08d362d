using System.Net;
using System.Net.Sockets;

namespace Fleet.Testing;

/// <summary>Finds a free TCP port on the loopback interface for a server a test fixture starts.</summary>
public static class FreePort
{
    /// <summary>Binds port 0 on 127.0.0.1, reads the port the OS chose and releases it.</summary>
    public static int Next()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
