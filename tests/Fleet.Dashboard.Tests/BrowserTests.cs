using Fleet.Dashboard.Live;
using Fleet.Ingest.Events;
using Fleet.Testing;
using OpenQA.Selenium;
using OpenQA.Selenium.Chrome;
using OpenQA.Selenium.Interactions;
using OpenQA.Selenium.Support.UI;

namespace Fleet.Dashboard.Tests;

/// <summary>The page in real headless Debian Chromium (chromium + chromium-driver, installed by test.sh).</summary>
[Trait("Category", "Integration")]
public sealed class BrowserTests
{
    private const int Vehicles = 60;

    private static readonly string[] ChromiumArgs =
    [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--window-size=1280,800",
    ];

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Page_LiveFeed_DrawsMovingVehiclesAndShowsStopArrivals()
    {
        var network = new FakeNetwork { ScheduleBase = DateTime.UtcNow.AddMinutes(2) };
        await using var host = await TestHost.StartAsync(network: network);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var producer = ProduceAsync(host.Live, stop.Token);
        var shots = Path.Combine(RepoPaths.Root, "artifacts", "screenshots");
        Directory.CreateDirectory(shots);

        using var driver = StartChromium();
        driver.Navigate().GoToUrl(host.BaseUri);
        var wait = new WebDriverWait(driver, TimeSpan.FromSeconds(60));
        wait.Message = "waiting for the page to draw vehicles (#vehicle-count)";
        try
        {
            wait.Until(d => int.TryParse(d.FindElement(By.Id("vehicle-count")).Text, out var n) && n >= Vehicles);
        }
        catch (WebDriverTimeoutException)
        {
            Screenshot(driver, Path.Combine(shots, "failure.png"));
            var log = string.Join("\n", driver.Manage().Logs.GetLog(LogType.Browser).Select(e => e.Message));
            Assert.Fail($"no vehicles drawn (count '{driver.FindElement(By.Id("vehicle-count")).Text}', connection '{driver.FindElement(By.Id("conn-state")).Text}'); see {shots}/failure.png; browser log:\n{log}");
        }

        Assert.Equal("connected", driver.FindElement(By.Id("conn-state")).Text);
        var before = Position(driver, "v0");
        Screenshot(driver, Path.Combine(shots, "map-1.png"));

        wait.Message = "waiting for vehicle v0 to move on the page";
        wait.Until(d =>
        {
            var now = Position(d, "v0");
            return Math.Abs(now.X - before.X) + Math.Abs(now.Y - before.Y) > 3;
        });
        Screenshot(driver, Path.Combine(shots, "map-2.png"));

        // Click stop S2 (Harbour), away from the vehicles' circle, where the map draws it.
        var map = driver.FindElement(By.Id("map"));
        var point = (IReadOnlyDictionary<string, object>)((IJavaScriptExecutor)driver).ExecuteScript(
            "const p = window.fleet.map.latLngToContainerPoint([60.160, 24.960]); return { x: p.x, y: p.y };")!;
        var x = Convert.ToDouble(point["x"], System.Globalization.CultureInfo.InvariantCulture);
        var y = Convert.ToDouble(point["y"], System.Globalization.CultureInfo.InvariantCulture);
        new Actions(driver).MoveToElement(map, (int)(x - (map.Size.Width / 2.0)), (int)(y - (map.Size.Height / 2.0))).Click().Perform();
        wait.Message = "waiting for stop S2's arrivals after clicking it";
        wait.Until(d => d.FindElements(By.CssSelector("#stop-arrivals li")).Count >= 3);
        var panel = driver.FindElement(By.Id("details-body")).Text;
        Screenshot(driver, Path.Combine(shots, "stop.png"));

        // Vehicle v1's panel lists its predictions although they name another trip than its position does (as an
        // HFP journey key and the GTFS trip tracking matched do).
        ((IJavaScriptExecutor)driver).ExecuteScript("window.fleet.select('vehicle', 'v1');");
        wait.Message = "waiting for vehicle v1's next stops after selecting it";
        wait.Until(d => d.FindElement(By.Id("details-body")).Text.Contains("Vehicle v1", StringComparison.Ordinal)
            && d.FindElements(By.CssSelector("#details-body ul.arrivals li")).Count >= 1);
        var vehiclePanel = driver.FindElement(By.Id("details-body")).Text;
        Screenshot(driver, Path.Combine(shots, "vehicle.png"));
        await stop.CancelAsync();
        await producer;

        Assert.Contains("Harbour", panel, StringComparison.Ordinal);
        Assert.Contains("min", panel, StringComparison.Ordinal);
        // The prediction for trip pred-1 carries a range: "(a min–b min)".
        Assert.Matches(@"\(\d+ min–\d+ min\)", panel);
        Assert.Contains("Vehicle v1", vehiclePanel, StringComparison.Ordinal);
        Assert.Contains("Harbour", vehiclePanel, StringComparison.Ordinal);
    }

    private static ChromeDriver StartChromium()
    {
        var service = ChromeDriverService.CreateDefaultService("/usr/bin", "chromedriver");
        service.SuppressInitialDiagnosticInformation = true;
        service.HideCommandPromptWindow = true;
        var options = new ChromeOptions { BinaryLocation = "/usr/bin/chromium" };
        options.AddArguments(ChromiumArgs);
        options.SetLoggingPreference(LogType.Browser, OpenQA.Selenium.LogLevel.All);
        options.AddArgument("--user-data-dir=" + Directory.CreateTempSubdirectory("fleet-chromium").FullName);
        return new ChromeDriver(service, options, TimeSpan.FromSeconds(60));
    }

    private static (double X, double Y) Position(IWebDriver driver, string id)
    {
        var p = ((IJavaScriptExecutor)driver).ExecuteScript($"return window.fleet.vehicles.positionOf('{id}');") as IReadOnlyDictionary<string, object>;
        Assert.NotNull(p);
        return (Convert.ToDouble(p["x"], System.Globalization.CultureInfo.InvariantCulture), Convert.ToDouble(p["y"], System.Globalization.CultureInfo.InvariantCulture));
    }

    private static void Screenshot(ChromeDriver driver, string path) => driver.GetScreenshot().SaveAsFile(path);

    // Vehicles going round a circle between the stops, and predictions at S2 with a range.
    private static async Task ProduceAsync(LiveEvents live, CancellationToken ct)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(200));
        var step = 0;
        try
        {
            do
            {
                var now = DateTime.UtcNow;
                for (var i = 0; i < Vehicles; i++)
                {
                    var angle = ((i * 360.0 / Vehicles) + (step * 1.5)) * Math.PI / 180;
                    live.PublishVehicle(new VehicleState(
                        $"v{i}", i % 2 == 0 ? "10" : "20", 0, $"trip-{i}",
                        60.172 + (0.006 * Math.Cos(angle)), 24.938 + (0.012 * Math.Sin(angle)),
                        ((i * 360.0 / Vehicles) + (step * 1.5) + 90) % 360, 8, (i % 7) * 60 - 60, TransportMode.Bus, "S2", now));
                }

                live.PublishPrediction(new ArrivalPrediction("S2", "pred-1", "v1", "10", 2, now.AddMinutes(4), now.AddMinutes(3), now.AddMinutes(7), now.AddMinutes(3), now));
                step++;
            }
            while (await timer.WaitForNextTickAsync(ct));
        }
        catch (OperationCanceledException)
        {
        }
    }
}
