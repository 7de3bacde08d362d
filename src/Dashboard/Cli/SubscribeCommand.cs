using System.CommandLine;
using System.Text.Json;
using System.Threading.Channels;
using Fleet.Dashboard.Hosting;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Client;

namespace Fleet.Dashboard.Cli;

/// <summary><c>fleet subscribe</c>: prints what a running <c>fleet serve</c> pushes for a stop, route or vehicle.</summary>
internal static class SubscribeCommand
{
    public static Command Create()
    {
        var url = new Option<string>("--url")
        {
            Description = "The server's base URL.",
            DefaultValueFactory = _ => ServeOptions.DefaultUrls,
        };
        var stop = new Option<string?>("--stop") { Description = "Subscribe to a stop's predictions." };
        var route = new Option<string?>("--route") { Description = "Subscribe to a route's vehicles and predictions." };
        var vehicle = new Option<string?>("--vehicle") { Description = "Subscribe to one vehicle (operator/vehicle)." };
        var bbox = new Option<string?>("--bbox") { Description = "Subscribe to every vehicle in minLon,minLat,maxLon,maxLat." };
        var apiKey = new Option<string?>("--api-key") { Description = "The server's API key, when it requires one." };
        var count = new Option<int?>("--count") { Description = "Stop after this many pushed items." };

        var cmd = new Command(
            "subscribe",
            """
            Subscribes to a running `fleet serve` hub and prints each pushed item as one JSON line:
            {"type":"prediction"|"withdrawal"|"vehicle"|"removed"|"alert", "data":{...}}; a withdrawal takes back the prediction of that trip at that stop (reason: passed, replaced, trip-ended, stale, vehicle-gone, restarted, expired).

            Example: fleet subscribe --url http://127.0.0.1:5080 --stop S0012 --count 20
            """)
        {
            url, stop, route, vehicle, bbox, apiKey, count,
        };
        cmd.Validators.Add(r =>
        {
            var given = new[] { r.GetValue(stop), r.GetValue(route), r.GetValue(vehicle), r.GetValue(bbox) }.Count(v => v is not null);
            if (given == 0)
            {
                r.AddError("give --stop, --route, --vehicle or --bbox");
            }

            // A validator sees an empty value for an option left at its default (http://127.0.0.1:5080).
            if (r.GetValue(url) is { Length: > 0 } text &&
                (!Uri.TryCreate(text, UriKind.Absolute, out var u) || (u.Scheme != Uri.UriSchemeHttp && u.Scheme != Uri.UriSchemeHttps)))
            {
                r.AddError($"--url '{r.GetValue(url)}' is not an http(s) URL");
            }

            if (r.GetValue(count) is <= 0)
            {
                r.AddError("--count must be positive");
            }
        });
        cmd.SetAction(async (parse, ct) =>
        {
            var subscriptions = new List<(string Kind, string Id)>();
            void Add(string kind, string? id)
            {
                if (id is not null)
                {
                    subscriptions.Add((kind, id));
                }
            }

            Add("stop", parse.GetValue(stop));
            Add("route", parse.GetValue(route));
            Add("vehicle", parse.GetValue(vehicle));
            Add("bbox", parse.GetValue(bbox));
            return await RunAsync(new Uri(parse.GetValue(url)!), subscriptions, parse.GetValue(apiKey), parse.GetValue(count), Console.Out, ct).ConfigureAwait(false);
        });
        return cmd;
    }

    /// <summary>Connects, subscribes and writes JSON lines until <paramref name="count"/> items or cancellation.</summary>
    /// <remarks>The hub client is the official one (Microsoft.AspNetCore.SignalR.Client), reconnecting by itself; its
    /// handlers run one at a time per connection and hand each item to one writer through a bounded channel.</remarks>
    public static async Task<int> RunAsync(
        Uri url,
        IReadOnlyList<(string Kind, string Id)> subscriptions,
        string? apiKey,
        int? count,
        TextWriter output,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(url);
        ArgumentNullException.ThrowIfNull(subscriptions);
        ArgumentNullException.ThrowIfNull(output);
        var lines = Channel.CreateBounded<string>(new BoundedChannelOptions(10_000) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
        await using var connection = new HubConnectionBuilder()
            .WithUrl(new Uri(url, LiveHub.Path), o =>
            {
                if (apiKey is not null)
                {
                    o.AccessTokenProvider = () => Task.FromResult<string?>(apiKey);
                }
            })
            .WithAutomaticReconnect()
            .Build();
        foreach (var (method, type) in new[]
        {
            ("vehicles", "vehicle"), ("predictions", "prediction"), ("withdrawn", "withdrawal"), ("alerts", "alert"), ("removed", "removed"),
        })
        {
            connection.On<JsonElement>(method, async batch =>
            {
                if (batch.ValueKind != JsonValueKind.Array)
                {
                    return;
                }

                foreach (var item in batch.EnumerateArray())
                {
                    // Waits when the writer is behind (the channel is bounded): SignalR then stops reading the socket.
                    await lines.Writer.WriteAsync(JsonSerializer.Serialize(new { type, data = item }), CancellationToken.None).ConfigureAwait(false);
                }
            });
        }

        string? closedBecause = null;
        connection.Closed += ex =>
        {
            closedBecause = ex?.Message ?? "by the server";
            lines.Writer.TryComplete();
            return Task.CompletedTask;
        };
        // Resubscribed after an automatic reconnect (a new connection has no subscriptions).
        connection.Reconnected += async _ =>
        {
            foreach (var (kind, id) in subscriptions)
            {
                await connection.InvokeAsync<int>("Subscribe", kind, id, CancellationToken.None).ConfigureAwait(false);
            }
        };

        try
        {
            await connection.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException or System.Net.WebSockets.WebSocketException or InvalidOperationException)
        {
            await Console.Error.WriteLineAsync($"fleet subscribe: cannot connect to {url}: {ex.Message}").ConfigureAwait(false);
            return 2;
        }

        foreach (var (kind, id) in subscriptions)
        {
            try
            {
                await connection.InvokeAsync<int>("Subscribe", kind, id, cancellationToken).ConfigureAwait(false);
            }
            catch (HubException ex)
            {
                // The server's message, without the client's "An unexpected error occurred invoking ..." wrapper.
                var reason = ex.Message.Contains("HubException: ", StringComparison.Ordinal) ? ex.Message[(ex.Message.IndexOf("HubException: ", StringComparison.Ordinal) + 14)..] : ex.Message;
                await Console.Error.WriteLineAsync($"fleet subscribe: {kind} '{id}' refused: {reason}").ConfigureAwait(false);
                return 2;
            }
        }

        var written = 0;
        try
        {
            await foreach (var line in lines.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                await output.WriteLineAsync(line).ConfigureAwait(false);
                if (count is { } max && ++written >= max)
                {
                    await output.FlushAsync(cancellationToken).ConfigureAwait(false);
                    return 0;
                }

                if (lines.Reader.Count == 0)
                {
                    await output.FlushAsync(cancellationToken).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return 0;
        }

        await Console.Error.WriteLineAsync($"fleet subscribe: connection closed: {closedBecause ?? "by the server"}").ConfigureAwait(false);
        return 1;
    }
}
