using System.CommandLine;
using Fleet.Dashboard.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;

namespace Fleet.Dashboard.Cli;

/// <summary><c>fleet serve</c>: the platform host (sources, the live fan-out, the hub, the API and the page).</summary>
internal static class ServeCommand
{
    public static Command Create()
    {
        var urls = new Option<string>("--urls")
        {
            Description = "Addresses to listen on, ';'-separated (loopback by default).",
            DefaultValueFactory = _ => ServeOptions.DefaultUrls,
        };
        var apiKey = new Option<string?>("--api-key") { Description = "Require this key on the API, hub and /metrics (X-Api-Key header, Bearer or access_token)." };
        var tileUrl = new Option<string?>("--tile-url") { Description = "A map tile URL template for the page ({z}/{x}/{y}); none by default." };

        var cmd = new Command(
            "serve",
            """
            Runs the platform: ingests the sources, keeps the live state and serves the map, the SignalR hub
            (/hubs/live), the REST API (/api/...) and /metrics.

            Example: fleet serve --urls http://127.0.0.1:5080
            """)
        {
            urls, apiKey, tileUrl,
        };
        cmd.SetAction((parse, ct) => RunAsync(
            new ServeOptions
            {
                Urls = parse.GetValue(urls) ?? ServeOptions.DefaultUrls,
                ApiKey = parse.GetValue(apiKey),
                TileUrl = parse.GetValue(tileUrl),
            },
            ct));
        return cmd;
    }

    /// <summary>Runs the host until <paramref name="cancellationToken"/> (Ctrl+C) fires.</summary>
    public static async Task<int> RunAsync(ServeOptions options, CancellationToken cancellationToken, Action<IServiceCollection>? configureServices = null)
    {
        await using var app = FleetWebHost.Build(options, configureServices);
        try
        {
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (IOException ex)
        {
            await Console.Error.WriteLineAsync($"fleet serve: cannot listen on {options.Urls}: {ex.Message}").ConfigureAwait(false);
            return 2;
        }

        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
        await Console.Out.WriteLineAsync($"fleet serve: listening on {string.Join(", ", addresses)} (Ctrl+C to stop)").ConfigureAwait(false);
        try
        {
            await Task.Delay(Timeout.Infinite, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }

        await app.StopAsync(CancellationToken.None).ConfigureAwait(false);
        return 0;
    }
}
