using System.CommandLine;
using System.Text.Json;
using Fleet.Dashboard.HubClient;
using Fleet.Dashboard.Hosting;

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
    public static async Task<int> RunAsync(
        Uri url,
        IReadOnlyList<(string Kind, string Id)> subscriptions,
        string? apiKey,
        int? count,
        TextWriter output,
        CancellationToken cancellationToken)
    {
        SignalRJsonClient client;
        try
        {
            client = await SignalRJsonClient.ConnectAsync(SignalRJsonClient.HubUri(url, LiveHub.Path, apiKey), cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is System.Net.WebSockets.WebSocketException or IOException or HttpRequestException)
        {
            await Console.Error.WriteLineAsync($"fleet subscribe: cannot connect to {url}: {ex.Message}").ConfigureAwait(false);
            return 2;
        }

        await using (client.ConfigureAwait(false))
        {
            foreach (var (kind, id) in subscriptions)
            {
                try
                {
                    await client.InvokeAsync("Subscribe", [kind, id], cancellationToken).ConfigureAwait(false);
                }
                catch (HubErrorException ex)
                {
                    await Console.Error.WriteLineAsync($"fleet subscribe: {kind} '{id}' refused: {ex.Message}").ConfigureAwait(false);
                    return 2;
                }
            }

            var written = 0;
            try
            {
                await foreach (var message in client.Messages.ReadAllAsync(cancellationToken).ConfigureAwait(false))
                {
                    var type = message.Target switch
                    {
                        "vehicles" => "vehicle",
                        "predictions" => "prediction",
                        "withdrawn" => "withdrawal",
                        "alerts" => "alert",
                        "removed" => "removed",
                        _ => message.Target,
                    };
                    if (message.Arguments.Length == 0 || message.Arguments[0].ValueKind != JsonValueKind.Array)
                    {
                        continue;
                    }

                    foreach (var item in message.Arguments[0].EnumerateArray())
                    {
                        await output.WriteLineAsync(JsonSerializer.Serialize(new { type, data = item })).ConfigureAwait(false);
                        if (count is { } max && ++written >= max)
                        {
                            await output.FlushAsync(cancellationToken).ConfigureAwait(false);
                            return 0;
                        }
                    }

                    await output.FlushAsync(cancellationToken).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return 0;
            }

            await Console.Error.WriteLineAsync($"fleet subscribe: connection closed: {client.CloseReason ?? "by the server"}").ConfigureAwait(false);
            return 1;
        }
    }
}
