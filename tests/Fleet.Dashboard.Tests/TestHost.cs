using System.Text;
using System.Text.Json;
using Fleet.Dashboard.Hosting;
using Fleet.Dashboard.HubClient;
using Fleet.Dashboard.Live;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;

namespace Fleet.Dashboard.Tests;

/// <summary>The real <c>fleet serve</c> host on Kestrel, 127.0.0.1, a port the OS picks.</summary>
internal sealed class TestHost : IAsyncDisposable
{
    private TestHost(WebApplication app, Uri baseUri)
    {
        App = app;
        BaseUri = baseUri;
        Live = app.Services.GetRequiredService<LiveEvents>();
        Http = new HttpClient { BaseAddress = baseUri, Timeout = TimeSpan.FromSeconds(20) };
    }

    public WebApplication App { get; }

    public Uri BaseUri { get; }

    public LiveEvents Live { get; }

    public HttpClient Http { get; }

    public static async Task<TestHost> StartAsync(
        string? apiKey = null, ITransitNetwork? network = null, LiveOptions? live = null, Action<IServiceCollection>? configure = null,
        Func<ServeOptions, ServeOptions>? serve = null)
    {
        var options = new ServeOptions { Urls = "http://127.0.0.1:0", ApiKey = apiKey };
        var app = FleetWebHost.Build(
            serve?.Invoke(options) ?? options,
            services =>
            {
                if (network is not null)
                {
                    services.AddSingleton(network);
                }

                if (live is not null)
                {
                    services.AddSingleton(live);
                }

                configure?.Invoke(services);
            });
        await app.StartAsync(TestContext.Current.CancellationToken);
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new TestHost(app, new Uri(address + "/"));
    }

    public Task<SignalRJsonClient> ConnectAsync(string? key = null, int capacity = 1024) =>
        SignalRJsonClient.ConnectAsync(SignalRJsonClient.HubUri(BaseUri, LiveHub.Path, key), capacity, TestContext.Current.CancellationToken);

    public async Task<JsonElement> GetJsonAsync(string path)
    {
        using var response = await Http.GetAsync(new Uri(path, UriKind.Relative), TestContext.Current.CancellationToken);
        var body = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        Assert.True(response.IsSuccessStatusCode, $"GET {path}: {(int)response.StatusCode} {body}");
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await App.StopAsync(CancellationToken.None);
        await App.DisposeAsync();
    }
}

/// <summary>A three-stop network along one line, for the API and the page.</summary>
internal sealed class FakeNetwork : ITransitNetwork
{
    public static readonly StopInfo[] StopList =
    [
        new("S1", "Central", 60.170, 24.940),
        new("S2", "Harbour", 60.160, 24.960),
        new("S3", "Park", 60.180, 24.920),
    ];

    public DateTime ScheduleBase { get; set; } = DateTime.UtcNow;

    public IReadOnlyList<RouteInfo> Routes { get; } = [new("10", "10", "Central – Harbour", 3, "1f77b4"), new("20", "20", "Park loop", 0, "d62728")];

    public ReadOnlyMemory<byte> GeoJson { get; } = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new
    {
        type = "FeatureCollection",
        features = new object[]
        {
            new
            {
                type = "Feature",
                properties = new { routeId = "10", color = "1f77b4" },
                geometry = new { type = "LineString", coordinates = StopList.Select(s => new[] { s.Longitude, s.Latitude }).ToArray() },
            },
        }.Concat(StopList.Select(s => (object)new
        {
            type = "Feature",
            properties = new { id = s.Id, name = s.Name },
            geometry = new { type = "Point", coordinates = new[] { s.Longitude, s.Latitude } },
        })).ToArray(),
    }));

    public StopInfo? Stop(string stopId) => StopList.FirstOrDefault(s => s.Id == stopId);

    public IReadOnlyList<ScheduledArrival> ScheduledArrivals(string stopId, DateTime fromUtc, DateTime toUtc, int max) =>
        Stop(stopId) is null
            ? []
            : [.. Enumerable.Range(0, 6)
                .Select(i => new ScheduledArrival($"sched-{i}", "10", "Harbour", 2, ScheduleBase.AddMinutes(i * 10)))
                .Where(a => a.Scheduled >= fromUtc && a.Scheduled < toUtc)
                .Take(max)];
}
