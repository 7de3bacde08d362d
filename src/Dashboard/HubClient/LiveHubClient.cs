using System.Text.Json;
using System.Threading.Channels;
using Fleet.Dashboard.Hosting;
using Fleet.Dashboard.Live;
using Microsoft.AspNetCore.SignalR.Client;

namespace Fleet.Dashboard.HubClient;

/// <summary>A message the server pushed: a hub method name and its arguments.</summary>
/// <param name="Target">The method (<c>vehicles</c>, <c>predictions</c>, ...).</param>
/// <param name="Arguments">Its arguments, as JSON.</param>
/// <param name="Received">When it was received (wall clock, UTC).</param>
public sealed record HubMessage(string Target, JsonElement[] Arguments, DateTime Received);

/// <summary>
/// A client of the live hub on the official SignalR client (<see cref="HubConnection"/>, JSON protocol): every push
/// (<see cref="LiveMethods"/>) goes into <see cref="Messages"/> with the moment it was received. Used by the hub benches.
/// </summary>
/// <remarks>
/// <see cref="Messages"/> is bounded: a reader that does not keep up makes the connection's handler wait, and the
/// SignalR client then stops reading the socket, so the server sees a slow client (as a browser that falls behind).
/// </remarks>
public sealed class LiveHubClient : IAsyncDisposable
{
    private static readonly string[] s_methods = [LiveMethods.Vehicles, LiveMethods.Removed, LiveMethods.Predictions, LiveMethods.Withdrawn, LiveMethods.Alerts];
    private readonly HubConnection _connection;
    private readonly Channel<HubMessage> _messages;

    private LiveHubClient(HubConnection connection, int capacity)
    {
        _connection = connection;
        _messages = Channel.CreateBounded<HubMessage>(new BoundedChannelOptions(capacity) { FullMode = BoundedChannelFullMode.Wait, SingleWriter = true });
        foreach (var method in s_methods)
        {
            _connection.On<JsonElement>(method, batch => _messages.Writer.WriteAsync(new HubMessage(method, [batch], DateTime.UtcNow)).AsTask());
        }

        _connection.Closed += _ =>
        {
            _messages.Writer.TryComplete();
            return Task.CompletedTask;
        };
    }

    /// <summary>Pushed messages, in arrival order. Completes when the connection closes.</summary>
    public ChannelReader<HubMessage> Messages => _messages.Reader;

    /// <summary>Connects to the live hub of the server at <paramref name="baseUrl"/> (WebSockets only).</summary>
    /// <param name="baseUrl">The server, e.g. http://127.0.0.1:5080/.</param>
    /// <param name="apiKey">The server's <c>--api-key</c>, if it has one.</param>
    /// <param name="capacity">Pushed messages held for the reader before the connection waits.</param>
    /// <param name="cancellationToken">Cancels connecting.</param>
    public static async Task<LiveHubClient> ConnectAsync(Uri baseUrl, string? apiKey = null, int capacity = 1024, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(baseUrl);
        var connection = new HubConnectionBuilder()
            .WithUrl(new Uri(baseUrl, LiveHub.Path), o =>
            {
                o.Transports = Microsoft.AspNetCore.Http.Connections.HttpTransportType.WebSockets;
                o.SkipNegotiation = true;
                if (apiKey is not null)
                {
                    o.AccessTokenProvider = () => Task.FromResult<string?>(apiKey);
                }
            })
            .Build();
        var client = new LiveHubClient(connection, capacity);
        try
        {
            await connection.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        return client;
    }

    /// <summary>Calls a hub method (<c>Subscribe</c>, <c>Unsubscribe</c>) and waits for its completion.</summary>
    public Task InvokeAsync(string method, object?[] arguments, CancellationToken cancellationToken = default) =>
        _connection.InvokeCoreAsync(method, arguments, cancellationToken);

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _connection.DisposeAsync().ConfigureAwait(false);
        _messages.Writer.TryComplete();
    }
}
