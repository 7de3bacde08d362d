using Fleet.Dashboard.Live;
using Fleet.Ingest.Events;
using Fleet.Dashboard.Sources;
using Fleet.Testing;
using Microsoft.Extensions.DependencyInjection;
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
        wait.IgnoreExceptionTypes(typeof(StaleElementReferenceException)); // the panels are re-rendered on every push
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

    [Fact]
    public async Task Page_SampleReplaySought_StopBoardListsOnlyWhatIsStillComing()
    {
        // The sample city replayed at 10x through tracking; a stop board open in the page while the replay is sought
        // with the page's own slider: afterwards every bus on the board was predicted after the seek, and none has
        // already left the stop (the generator's truth).
        var dir = RepoPaths.SampleData;
        var truth = ReadTruth(Path.Combine(dir, "truth.csv"));
        await using var host = await TestHost.StartAsync(
            network: Hosting.GtfsNetwork.Load(Path.Combine(dir, "gtfs.zip")),
            configure: s => s.AddReplay(new ReplayOptions { Path = Path.Combine(dir, "recording.hfp.gz"), Speed = 10, Loop = true }));
        var shots = Path.Combine(RepoPaths.Root, "artifacts", "screenshots");
        Directory.CreateDirectory(shots);

        // The stop with the most buses predicted once the replay has been running a little.
        string? stopId = null;
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (stopId is null)
        {
            Assert.True(DateTime.UtcNow < until, "no stop with two predicted buses within 60 s of replay");
            await Task.Delay(500, Ct);
            stopId = host.Live.AllPredictions().Where(p => p.VehicleId is not null).GroupBy(p => p.StopId)
                .Where(g => g.Count() >= 2).OrderByDescending(g => g.Count()).ThenBy(g => g.Key, StringComparer.Ordinal)
                .Select(g => g.Key).FirstOrDefault();
        }

        using var driver = StartChromium();
        driver.Navigate().GoToUrl(host.BaseUri);
        var wait = new WebDriverWait(driver, TimeSpan.FromSeconds(60));
        wait.IgnoreExceptionTypes(typeof(StaleElementReferenceException)); // the panels are re-rendered on every push
        wait.Message = "waiting for the page to connect and show the replay controls";
        wait.Until(d => d.FindElement(By.Id("conn-state")).Text == "connected" && d.FindElement(By.Id("replay")).Displayed);
        ((IJavaScriptExecutor)driver).ExecuteScript($"window.fleet.select('stop', '{stopId}');");
        wait.Message = $"waiting for stop {stopId}'s board to list a predicted bus";
        wait.Until(d => d.FindElements(By.CssSelector("#stop-arrivals li[data-vehicle]")).Count >= 1);
        Screenshot(driver, Path.Combine(shots, "board-before-seek.png"));

        // Seek to 60% with the slider, as a user drags it.
        var sought = DateTime.UtcNow;
        ((IJavaScriptExecutor)driver).ExecuteScript(
            "const r = document.getElementById('replay-position'); r.value = '600'; r.dispatchEvent(new Event('change'));");
        wait.Message = "waiting for the replay to seek to 60%";
        wait.Until(_ => host.Live.AllPredictions().Count > 0 && ReplayPosition(host) is >= 0.6 and < 0.9);

        // The board is rebuilt from what comes after the seek: every bus on it was predicted after it.
        wait.Message = $"waiting for stop {stopId}'s board to list only buses predicted after the seek";
        List<(string Trip, string Vehicle)> rows = [];
        wait.Until(d =>
        {
            // Read in one script: the board is re-rendered on every push, so element handles go stale.
            var read = (IReadOnlyCollection<object>)((IJavaScriptExecutor)d).ExecuteScript(
                "return [...document.querySelectorAll('#stop-arrivals li[data-vehicle]')].map(li => li.dataset.trip + '|' + li.dataset.vehicle);")!;
            rows = [.. read.Select(o => ((string)o).Split('|') is var x ? (x[0], x[1]) : default)];
            var held = host.Live.PredictionsAt(stopId);
            return rows.Count >= 1 && rows.All(r => held.Any(p => p.TripId == r.Trip && p.VehicleId == r.Vehicle && p.Updated >= sought));
        });
        // And once the board has been fetched again for the new moment, its scheduled trips are of that moment too:
        // nothing from before the seek, in time order.
        wait.Message = $"waiting for stop {stopId}'s board to show only trips due from now on";
        IReadOnlyList<long> times = [];
        wait.Until(d =>
        {
            times = [.. ((IReadOnlyCollection<object>)((IJavaScriptExecutor)d).ExecuteScript(
                "return [...document.querySelectorAll('#stop-arrivals li')].map(li => Number(li.dataset.at));")!).Select(Convert.ToInt64)];
            var serverNow = new DateTimeOffset(host.Live.LatestEventTime ?? DateTime.UtcNow).ToUnixTimeMilliseconds();
            return times.Count >= 2 && times.All(t => t >= serverNow - 120_000);
        });
        Assert.Equal([.. times.Order()], times);
        Screenshot(driver, Path.Combine(shots, "board-after-seek.png"));
        var recorded = RecordedTime(host);
        foreach (var (trip, vehicle) in rows)
        {
            var p = host.Live.PredictionsAt(stopId).FirstOrDefault(x => x.TripId == trip);
            Assert.NotNull(p);
            Assert.True(!truth.TryGetValue((trip, p.StopSequence), out var left) || left >= recorded - TimeSpan.FromSeconds(90),
                $"the board lists {vehicle} on {trip}, which left stop {stopId} at {left:HH:mm:ss} (replay at {recorded:HH:mm:ss})");
        }
    }

    [Fact]
    public async Task Page_SampleCity_LegendSearchSharedUrlsRouteColoursAndPhoneLayout()
    {
        var dir = RepoPaths.SampleData;
        await using var host = await TestHost.StartAsync(
            network: Hosting.GtfsNetwork.Load(Path.Combine(dir, "gtfs.zip")),
            configure: s => s.AddReplay(new ReplayOptions { Path = Path.Combine(dir, "recording.hfp.gz"), Speed = 5, Loop = true }));
        var shots = Path.Combine(RepoPaths.Root, "artifacts", "screenshots");
        Directory.CreateDirectory(shots);
        using var driver = StartChromium();
        var js = driver;
        var wait = new WebDriverWait(driver, TimeSpan.FromSeconds(60));
        wait.IgnoreExceptionTypes(typeof(StaleElementReferenceException)); // the panels are re-rendered on every push

        // A shared link to a stop opens its board (1000134: Omenankatu/Leppänväylä, code 0134).
        driver.Navigate().GoToUrl(new Uri(host.BaseUri, "/#stop=1000134"));
        wait.Message = "waiting for the shared link's stop board";
        wait.Until(d => d.FindElement(By.Id("details-body")).Text.Contains("Omenankatu/Leppänväylä", StringComparison.Ordinal));
        wait.Message = "waiting for vehicles on the map";
        wait.Until(d => int.TryParse(d.FindElement(By.Id("vehicle-count")).Text, out var n) && n >= 20);

        // The delay legend, the tiles' attribution, and either tiles or the note that they could not load.
        var legend = driver.FindElement(By.CssSelector("[aria-label*='legend' i]"));
        Assert.True(legend.Displayed);
        Assert.Contains("over 5 min late", legend.Text, StringComparison.Ordinal);
        Assert.Contains("OpenStreetMap", driver.FindElement(By.CssSelector(".leaflet-control-attribution")).Text, StringComparison.Ordinal);
        wait.Message = "waiting for the tiles to load or the offline note";
        wait.Until(d => d.FindElements(By.CssSelector("img.leaflet-tile-loaded")).Count > 0 || d.FindElement(By.Id("tiles-note")).Displayed);
        Screenshot(driver, Path.Combine(shots, "page-stop-from-url.png"));

        // Routes drawn in their colours, as /api/routes gives them.
        var routes = (await host.GetJsonAsync("api/routes")).EnumerateArray()
            .ToDictionary(r => r.GetProperty("id").GetString()!, r => "#" + r.GetProperty("color").GetString());
        var drawn = ((IReadOnlyCollection<object>)js.ExecuteScript(
            "const out = []; window.fleet.shapes().eachLayer(l => out.push(l.feature.properties.routeId + '|' + l.options.color)); return out;")!)
            .Select(o => ((string)o).Split('|')).ToList();
        Assert.True(drawn.Count >= routes.Count, $"{drawn.Count} route lines drawn");
        Assert.All(drawn, d => Assert.Equal(routes[d[0]], d[1], ignoreCase: true));
        Assert.True(drawn.Select(d => d[1]).Distinct().Count() >= 5, "the routes are drawn in different colours");

        // Search: a stop by part of its name, chosen with the keyboard, opens its board and the URL names it.
        var search = driver.FindElement(By.CssSelector("input[aria-label*='search' i]"));
        search.Click();
        search.SendKeys("Lähdentie");
        wait.Message = "waiting for search results";
        wait.Until(d => d.FindElements(By.CssSelector("#search-results li")).Count >= 1);
        Screenshot(driver, Path.Combine(shots, "page-search.png"));
        search.SendKeys(Keys.Enter);
        wait.Message = "waiting for the searched stop's board";
        wait.Until(d => d.FindElement(By.Id("details-body")).Text.Contains("Lähdentie", StringComparison.Ordinal)
            && d.Url.Contains("#stop=", StringComparison.Ordinal));
        Assert.DoesNotContain("#stop=1000134", driver.Url, StringComparison.Ordinal);

        // A route by its short name from the search box: highlighted along its shape, its vehicles listed.
        search.SendKeys("61");
        wait.Until(d => d.FindElements(By.CssSelector("#search-results li")).Count >= 1);
        search.SendKeys(Keys.Enter);
        wait.Message = "waiting for route 61's panel";
        wait.Until(d => d.Url.EndsWith("#route=1061", StringComparison.Ordinal) && d.FindElements(By.CssSelector("#route-vehicles li")).Count >= 1
            && d.FindElements(By.CssSelector("#route-delay-chart .uplot canvas")).Count == 1 && d.FindElements(By.CssSelector("#route-headway-chart .uplot canvas")).Count == 1);
        var weights = ((IReadOnlyCollection<object>)js.ExecuteScript(
            "const out = []; window.fleet.shapes().eachLayer(l => { if (l.feature.properties.routeId === '1061') out.push(l.options.weight); }); return out;")!);
        Assert.All(weights, w => Assert.Equal(5L, Convert.ToInt64(w, System.Globalization.CultureInfo.InvariantCulture)));
        Screenshot(driver, Path.Combine(shots, "page-route.png"));

        // A vehicle from the route's list: its panel names the route, and its trail grows as it reports.
        var vehicle = (string)js.ExecuteScript("return document.querySelector('#route-vehicles li').dataset.vehicle;")!;
        driver.Navigate().GoToUrl(new Uri(host.BaseUri, "/#vehicle=" + Uri.EscapeDataString(vehicle)));
        driver.Navigate().Refresh();
        wait.Message = $"waiting for vehicle {vehicle}'s panel and trail";
        wait.Until(d => d.FindElement(By.Id("details-body")).Text.Contains(vehicle, StringComparison.Ordinal)
            && Convert.ToInt64(((IJavaScriptExecutor)d).ExecuteScript("return window.fleet.trail().length;"), System.Globalization.CultureInfo.InvariantCulture) >= 2);
        Assert.Contains("61", (string)js.ExecuteScript("return document.querySelector('#details-body .route-badge').textContent;")!, StringComparison.Ordinal);
        Screenshot(driver, Path.Combine(shots, "page-vehicle-trail.png"));

        // On a phone the panel is a bottom sheet over the map.
        driver.Manage().Window.Size = new System.Drawing.Size(390, 844);
        wait.Message = "waiting for the phone layout";
        wait.Until(d => (string)((IJavaScriptExecutor)d).ExecuteScript("return getComputedStyle(document.getElementById('side')).position;")! == "fixed");
        Screenshot(driver, Path.Combine(shots, "page-phone.png"));
    }

    [Fact]
    public async Task Page_ServerWithApiKey_SignInFormThenTheMap()
    {
        await using var host = await TestHost.StartAsync(apiKey: "s3cret", network: new FakeNetwork());
        host.Live.PublishVehicle(LiveEventsTests.Vehicle("v1"));
        using var driver = StartChromium();
        var wait = new WebDriverWait(driver, TimeSpan.FromSeconds(30));
        wait.IgnoreExceptionTypes(typeof(StaleElementReferenceException));

        driver.Navigate().GoToUrl(host.BaseUri);
        wait.Message = "waiting for the sign-in form";
        wait.Until(d => d.FindElement(By.Id("sign-in")).Displayed);
        driver.FindElement(By.Id("sign-in-key")).SendKeys("s3cret");
        driver.FindElement(By.CssSelector("#sign-in button")).Click();

        wait.Message = "waiting for the map after signing in";
        wait.Until(d => d.FindElement(By.Id("conn-state")).Text == "connected" && !d.FindElement(By.Id("sign-in")).Displayed);
        Assert.DoesNotContain("s3cret", driver.Url, StringComparison.Ordinal);
        Assert.Equal("s3cret", ((IJavaScriptExecutor)driver).ExecuteScript("return sessionStorage.getItem('fleet.key');"));
    }

    private static double ReplayPosition(TestHost host) =>
        host.App.Services.GetRequiredService<IReplayControl>().State.Position;

    private static DateTime RecordedTime(TestHost host) =>
        host.App.Services.GetRequiredService<IReplayControl>().State.RecordedTime ?? DateTime.MinValue;

    // truth.csv: trip_id,stop_id,stop_sequence,vehicle,arrival,departure (the generator's ground truth).
    private static Dictionary<(string Trip, int Sequence), DateTime> ReadTruth(string path)
    {
        var result = new Dictionary<(string, int), DateTime>();
        foreach (var line in File.ReadLines(path).Skip(1))
        {
            var c = line.Split(',');
            result[(c[0], int.Parse(c[2], System.Globalization.CultureInfo.InvariantCulture))] = DateTime.Parse(
                c[5], System.Globalization.CultureInfo.InvariantCulture,
                System.Globalization.DateTimeStyles.AdjustToUniversal | System.Globalization.DateTimeStyles.AssumeUniversal);
        }

        return result;
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
