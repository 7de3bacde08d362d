using System.Collections.Concurrent;
using System.Net;
using Fleet.Testing;

namespace Fleet.Gtfs.Tests.Realtime;

/// <summary>A tiny HTTP server on 127.0.0.1 (HttpListener) whose responses a test scripts.</summary>
internal sealed class LoopbackHttpServer : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly Func<HttpListenerRequest, HttpListenerResponse, Task> _handler;
    private readonly Task _loop;

    public LoopbackHttpServer(Func<HttpListenerRequest, HttpListenerResponse, Task> handler)
    {
        _handler = handler;
        var port = FreePort.Next();
        Url = new Uri($"http://127.0.0.1:{port}/feed.pb");
        _listener.Prefixes.Add($"http://127.0.0.1:{port}/");
        _listener.Start();
        _loop = Task.Run(LoopAsync);
    }

    public Uri Url { get; }

    /// <summary>Request headers seen, in order (If-None-Match, If-Modified-Since).</summary>
    public ConcurrentQueue<(string? IfNoneMatch, string? IfModifiedSince)> Requests { get; } = new();

    private async Task LoopAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception) when (!_listener.IsListening)
            {
                return;
            }
            catch (HttpListenerException)
            {
                return;
            }

            Requests.Enqueue((context.Request.Headers["If-None-Match"], context.Request.Headers["If-Modified-Since"]));
            _ = Task.Run(async () =>
            {
                try
                {
                    await _handler(context.Request, context.Response);
                    context.Response.Close();
                }
                catch (Exception) when (!_listener.IsListening)
                {
                }
                catch (HttpListenerException)
                {
                }
                catch (ObjectDisposedException)
                {
                }
            });
        }
    }

    public void Dispose()
    {
        _listener.Stop();
        _listener.Close();
        _loop.Wait(TimeSpan.FromSeconds(5));
    }
}
