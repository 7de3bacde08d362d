using System.Text.Json;
using Fleet.Dashboard.Hosting;
using Fleet.Dashboard.Sources;
using Fleet.Gtfs.Realtime;
using Fleet.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Fleet.Dashboard.Tests;

/// <summary>
/// Real data (skipped without ../shared): Auckland Transport's TripUpdates day served as a live feed, one snapshot per
/// poll, to <c>fleet serve</c>'s host with the static subset of routes 005, 007 and 008: tracked from its stop events
/// alone (no positions), predicted at every poll, and served again as a TripUpdates feed our validator finds clean.
/// </summary>
[Trait("Category", "RealData")]
public sealed class AucklandLiveTests
{
    private const string Archive = "gtfs-rt/auckland-tripupdates_2016-05-19/auckland-tripupdates_2016-05-19.tar.gz";
    private const string Static = "gtfs-static/auckland_2016-05_routes005-007-008.zip";
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Serve_AucklandTripUpdatesAlone_ArrivalsFromStopEventsPredictionsAndAValidFeed()
    {
        var archive = SharedData.RequireFile(Archive);
        var network = GtfsNetwork.Load(SharedData.RequireFile(Static));
        // 30 polls from 10:18 local time (the morning between the peaks), one per request.
        var snapshots = GtfsRtArchive.Read(archive).Skip(600).Take(30).Select(s => s.Bytes).ToList();
        await using var server = await SequenceServer.StartAsync(snapshots);
        await using var host = await TestHost.StartAsync(network: network, configure: s => s
            .AddSingleton(new Fleet.Tracking.TrackingOptions { TripUpdateStopEvents = true }) // what serve sets with GTFS-RT sources alone
            .AddGtfsRtSource(GtfsRtSourceOptions.Parse(server.Url.ToString(), TimeSpan.FromSeconds(1))));

        await AwaitAsync(() => server.Served >= snapshots.Count, "every snapshot polled", seconds: 90);
        host.App.Services.GetRequiredService<LivePipeline>().Flush();

        var arrivals = 0;
        foreach (var route in (await host.GetJsonAsync("api/routes")).EnumerateArray().Select(r => r.GetProperty("id").GetString()!))
        {
            arrivals += (await host.GetJsonAsync($"api/routes/{route}/history")).GetProperty("points").EnumerateArray().Sum(p => p.GetProperty("arrivals").GetInt32());
        }

        var health = await host.GetJsonAsync("api/health");
        using var response = await host.Http.GetAsync(new Uri("gtfs-rt/trip-updates", UriKind.Relative), Ct);
        var feed = GtfsRtDecoder.Decode(await response.Content.ReadAsByteArrayAsync(Ct));
        var findings = new GtfsRtValidator(network.Schedule).Validate(feed).Findings;

        // Half an hour of three routes with several buses each reaches dozens of stops (a live run from 10:18 counted
        // 74 in a minute and a half); 20 leaves room for the polls' timing while still failing when stop events are off.
        Assert.True(arrivals >= 20, $"{arrivals} observed arrivals on the routes' histories");
        Assert.True(health.GetProperty("predictions").GetInt32() > 0, health.ToString());
        Assert.Equal(0, health.GetProperty("vehicles").GetInt32()); // TripUpdates alone: nobody on the map
        Assert.NotEmpty(feed.Entity);
        Assert.True(findings.Count == 0, string.Join("\n", findings.Select(f => $"{f.Code} {f.EntityId} {f.Message}")));
    }

    private static async Task AwaitAsync(Func<bool> condition, string what, int seconds)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting for {what}");
            await Task.Delay(100, Ct);
        }
    }

    // Serves the snapshots in order, one per request (the last again once they are all served).
    private sealed class SequenceServer : IAsyncDisposable
    {
        private readonly WebApplication _app;
        private int _served;

        private SequenceServer(WebApplication app) => _app = app;

        public Uri Url { get; private set; } = null!;

        public int Served => Volatile.Read(ref _served);

        public static async Task<SequenceServer> StartAsync(List<byte[]> snapshots)
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            builder.Logging.ClearProviders();
            var app = builder.Build();
            var server = new SequenceServer(app);
            app.MapGet("/feed", () =>
            {
                var i = Interlocked.Increment(ref server._served) - 1;
                return Results.Bytes(snapshots[Math.Min(i, snapshots.Count - 1)], "application/json");
            });
            await app.StartAsync(Ct);
            server.Url = new Uri(new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First()), "/feed");
            return server;
        }

        public async ValueTask DisposeAsync()
        {
            await _app.StopAsync(CancellationToken.None);
            await _app.DisposeAsync();
        }
    }
}
