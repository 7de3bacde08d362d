using Fleet.Actors.Hosting;
using System.Text.Json;
using System.Text.Json.Serialization;
using Fleet.Dashboard.Live;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.FileProviders;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Fleet.Dashboard.Hosting;

/// <summary>Builds the ASP.NET Core host of <c>fleet serve</c>: the hub, the REST API, /metrics and the page.</summary>
public static class FleetWebHost
{
    /// <summary>Largest hub message a client may send (subscriptions are tiny).</summary>
    public const long MaxClientMessageBytes = 4 * 1024;

    /// <summary>SignalR's per-connection transport and application buffers (each direction) before backpressure.</summary>
    public const long HubBufferBytes = 64 * 1024;

    /// <summary>JSON settings shared by the API and the hub: camelCase, enums as camelCase strings.</summary>
    public static void Configure(JsonSerializerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.PropertyNamingPolicy = JsonNamingPolicy.CamelCase;
        options.DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull;
        options.Converters.Add(new JsonStringEnumConverter(JsonNamingPolicy.CamelCase));
    }

    /// <summary>
    /// Builds (does not start) the host. <paramref name="configureServices"/> adds the sources (replay, MQTT,
    /// GTFS-RT), the network and anything else; it runs after the defaults, so it may replace them.
    /// </summary>
    public static WebApplication Build(ServeOptions options, Action<IServiceCollection>? configureServices = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var webRoot = options.WebRoot ?? FindWebRoot();
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            ContentRootPath = AppContext.BaseDirectory,
            WebRootPath = webRoot,
            Args = [],
        });
        builder.WebHost.UseUrls(options.Urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "HH:mm:ss ";
        });
        builder.Logging.SetMinimumLevel(LogLevel.Information);
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        // The hub dispatcher logs a client's refused call (HubException) with its stack trace; HubErrorFilter logs
        // what matters instead (a real failure at Error, a refusal at Debug).
        builder.Logging.AddFilter("Microsoft.AspNetCore.SignalR.Internal.DefaultHubDispatcher", LogLevel.Critical);
        // The exception handler logs every handled exception at Error; a malformed request is the client's (400).
        builder.Logging.AddFilter("Microsoft.AspNetCore.Diagnostics.ExceptionHandlerMiddleware", LogLevel.Critical);

        var services = builder.Services;
        services.AddSingleton(options);
        services.AddSingleton(options.Tracking);
        services.AddSingleton(TimeProvider.System);
        // A vehicle's predictions go when tracking would call it stale (serve --stale-after).
        services.AddSingleton(new LiveOptions { PredictionStaleAfter = options.Tracking.StaleAfter });
        services.AddSingleton<ILiveTransport, HubLiveTransport>();
        services.AddSingleton<LiveEvents>();
        services.AddSingleton<SourceRegistry>();
        services.AddSingleton<ArrivalPredictors>();
        services.AddSingleton<IMetricsContributor>(sp => sp.GetRequiredService<ArrivalPredictors>());
        services.AddHostedService<LiveEventsService>();
        FleetMetrics.AddServices(services, options.Otlp, options.OtlpInterval);
        services.AddProblems();
        services.ConfigureHttpJsonOptions(o => Configure(o.SerializerOptions));
        services.AddSignalR(o =>
        {
            o.AddFilter<HubErrorFilter>();
            o.MaximumReceiveMessageSize = MaxClientMessageBytes;
            o.EnableDetailedErrors = false;
        }).AddJsonProtocol(o => Configure(o.PayloadSerializerOptions));
        configureServices?.Invoke(services);
        if (!services.Any(d => d.ServiceType == typeof(TrackingCluster)))
        {
            // Without a store, tracking runs on the node's partitions all the same, applied in memory.
            services.AddFleetTracking(new FleetAkkaOptions());
        }

        services.AddSingleton<IMetricsContributor, TrackingMetrics>();

        var app = builder.Build();
        app.UseProblems();
        if (options.ApiKey is { Length: > 0 } key)
        {
            app.UseMiddleware<ApiKeyMiddleware>(key);
        }

        app.UseWebSockets();
        if (webRoot is not null && Directory.Exists(webRoot))
        {
            var files = new PhysicalFileProvider(webRoot);
            app.UseDefaultFiles(new DefaultFilesOptions { FileProvider = files });
            app.UseStaticFiles(new StaticFileOptions { FileProvider = files });
        }
        else
        {
            app.MapGet("/", () => Microsoft.AspNetCore.Http.Results.Text(
                "The page is not built: run `dotnet build src/Dashboard` (needs node and npm).", "text/plain"));
        }

        app.MapHub<LiveHub>(LiveHub.Path, o =>
        {
            // What SignalR buffers per connection in each direction before it applies backpressure (its defaults,
            // set here because the slow-client bound depends on them): a client that stops reading holds this much
            // outgoing data plus the one message per lane LiveEvents has in flight, then its sends wait.
            o.TransportMaxBufferSize = HubBufferBytes;
            o.ApplicationMaxBufferSize = HubBufferBytes;
            // SignalR closes a connection whose single send has waited 10 s (its default), which would pre-empt
            // LiveOptions.SlowClientTimeout, the documented rule for a client that stops reading: the transport's
            // timeout stays only as a backstop at twice that.
            o.TransportSendTimeout = app.Services.GetRequiredService<LiveOptions>().SlowClientTimeout * 2;
        });
        LiveApi.Map(app);
        FleetMetrics.Map(app);
        TripUpdatesFeed.Map(app);
        VehiclePositionsFeed.Map(app);
        ReplayApi.Map(app);
        return app;
    }

    /// <summary>
    /// Finds the built page: <c>wwwroot</c> beside the app (a published build), else <c>src/Dashboard/wwwroot</c>
    /// above it (a development build, where the Dashboard build writes it). Null when neither exists.
    /// </summary>
    public static string? FindWebRoot()
    {
        var beside = Path.Combine(AppContext.BaseDirectory, "wwwroot");
        if (File.Exists(Path.Combine(beside, "index.html")))
        {
            return beside;
        }

        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "src", "Dashboard", "wwwroot");
            if (File.Exists(Path.Combine(candidate, "index.html")))
            {
                return candidate;
            }
        }

        return null;
    }
}
