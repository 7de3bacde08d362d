using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using Fleet.Dashboard.Live;
using Fleet.Dashboard.Sources;
using Fleet.Mqtt;
using Fleet.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace Fleet.Dashboard.Tests;

/// <summary>
/// <c>fleet serve --mqtt-listen</c>: the embedded broker (MQTTnet.Server) takes HFP from mosquitto_pub and from
/// Fleet's own client, with and without a users file and TLS, into the same pipeline and counters as any source.
/// </summary>
[Trait("Category", "Integration")]
public sealed class MqttBrokerTests
{
    private const string MosquittoPub = "/usr/bin/mosquitto_pub";
    private static int s_clients;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string Topic(int vehicle) => $"/hfp/v2/journey/ongoing/vp/bus/0018/{vehicle:00000}/1064/1/Itä-Pakila/15:00/1353117/0/60;24/29/45/98";

    private static string Payload(int vehicle, DateTime at) =>
        $$$"""{"VP":{"desi":"64","dir":"1","oper":18,"veh":{{{vehicle}}},"tst":"{{{at:yyyy-MM-ddTHH:mm:ss.fffZ}}}","tsi":0,"spd":8.5,"hdg":90,"lat":60.2,"long":24.9,"acc":0,"dl":-30,"odo":0,"drst":0,"oday":"{{{at:yyyy-MM-dd}}}","jrn":1,"line":1,"start":"15:00","loc":"GPS","stop":null,"route":"1064","occu":0}}""";

    [Fact]
    public async Task MosquittoPub_HfpIntoTheBroker_VehiclesOnTheMapRejectionsCounted()
    {
        var port = FreePort.Next();
        await using var host = await TestHost.StartAsync(configure: s => s.AddMqttBroker(new MqttBrokerOptions { Address = IPAddress.Loopback, Port = port }));
        var now = DateTime.UtcNow;

        for (var v = 1; v <= 3; v++)
        {
            Assert.Equal(0, (await PubAsync(port, Topic(v), Payload(v, now))).Exit);
        }

        Assert.Equal(0, (await PubAsync(port, Topic(9), "{not json")).Exit);

        var source = await HealthOfAsync(host, $"mqtt-listen:127.0.0.1:{port}");
        Assert.Equal("mqtt", source.GetProperty("kind").GetString());
        Assert.Equal(3, source.GetProperty("events").GetInt64());
        Assert.Equal(1, source.GetProperty("rejected").EnumerateObject().Sum(r => r.Value.GetInt64()));
        Assert.Equal(3, host.Live.VehicleCount);
    }

    [Fact]
    public async Task MosquittoPubMqtt5_NoClientId_TheBrokerAssignsOne()
    {
        var port = FreePort.Next();
        await using var host = await TestHost.StartAsync(configure: s => s.AddMqttBroker(new MqttBrokerOptions { Address = IPAddress.Loopback, Port = port }));
        var info = new ProcessStartInfo(MosquittoPub) { RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "-h", "127.0.0.1", "-p", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-V", "mqttv5", "-q", "1", "-t", Topic(7), "-m", Payload(7, DateTime.UtcNow) })
        {
            info.ArgumentList.Add(a);
        }

        using var process = Process.Start(info)!;
        await process.WaitForExitAsync(Ct);

        Assert.True(process.ExitCode == 0, await process.StandardError.ReadToEndAsync(Ct));
        Assert.NotNull(host.Live.Vehicle("0018/00007"));
    }

    [Fact]
    public async Task UsersFile_WrongPasswordRefused_RightOneAccepted()
    {
        var dir = Directory.CreateTempSubdirectory("fleet-users-").FullName;
        var users = Path.Combine(dir, "users.txt");
        await File.WriteAllLinesAsync(users, [MqttUsers.Line("bus-0426", "s3cret"), "# a comment"], Ct);
        Assert.DoesNotContain("s3cret", await File.ReadAllTextAsync(users, Ct), StringComparison.Ordinal);
        var port = FreePort.Next();
        await using var host = await TestHost.StartAsync(configure: s => s.AddMqttBroker(new MqttBrokerOptions { Address = IPAddress.Loopback, Port = port, UsersFile = users }));

        var anonymous = await PubAsync(port, Topic(1), Payload(1, DateTime.UtcNow));
        var wrong = await PubAsync(port, Topic(2), Payload(2, DateTime.UtcNow), "-u", "bus-0426", "-P", "guess");
        var right = await PubAsync(port, Topic(3), Payload(3, DateTime.UtcNow), "-u", "bus-0426", "-P", "s3cret");

        Assert.NotEqual(0, anonymous.Exit);
        Assert.NotEqual(0, wrong.Exit);
        Assert.True(right.Exit == 0, right.Output);
        var source = await HealthOfAsync(host, $"mqtt-listen:127.0.0.1:{port}");
        Assert.Equal(1, source.GetProperty("events").GetInt64());
        Assert.NotNull(host.Live.Vehicle("0018/00003"));
        Directory.Delete(dir, recursive: true);
    }

    [Fact]
    public async Task OwnClient_Qos1_EveryAcknowledgedMessageIsAlreadyTakenAndNoneIsLost()
    {
        var port = FreePort.Next();
        await using var host = await TestHost.StartAsync(configure: s => s.AddMqttBroker(new MqttBrokerOptions { Address = IPAddress.Loopback, Port = port }));
        var broker = host.App.Services.GetRequiredService<MqttBrokerSource>();
        await using var client = new MqttClient(new MqttClientOptions { Server = new Uri($"mqtt://127.0.0.1:{port}"), ClientId = "bus-publisher" }, NullLogger<MqttClient>.Instance);
        await client.ConnectAsync(Ct);
        var t0 = DateTime.UtcNow;

        const int Messages = 2000;
        for (var i = 0; i < Messages; i++)
        {
            await client.PublishAsync(Topic(1 + (i % 50)), Encoding.UTF8.GetBytes(Payload(1 + (i % 50), t0.AddMilliseconds(i * 20))), MqttQos.AtLeastOnce, cancellationToken: Ct);
            // Acknowledged means taken: the count is there the moment the PUBACK is.
            Assert.Equal(i + 1, broker.Received);
        }

        // And every message taken goes through the pipeline: counted on the source, its vehicle on the map.
        var until = DateTime.UtcNow.AddSeconds(30);
        while (broker.Status.Events < Messages && DateTime.UtcNow < until)
        {
            await Task.Delay(20, Ct);
        }

        Assert.Equal(Messages, broker.Status.Events);
        Assert.Equal(50, host.Live.VehicleCount);
    }

    [Fact]
    public async Task Tls_MosquittoPubWithTheCa_Accepted_PlainRefused()
    {
        var dir = Directory.CreateTempSubdirectory("fleet-tls-").FullName;
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        san.AddDnsName("localhost");
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: true, hasPathLengthConstraint: false, pathLengthConstraint: 0, critical: true));
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        var pfx = Path.Combine(dir, "broker.pfx");
        var ca = Path.Combine(dir, "ca.pem");
        await File.WriteAllBytesAsync(pfx, certificate.Export(X509ContentType.Pkcs12, "pfx-pass"), Ct);
        await File.WriteAllTextAsync(ca, certificate.ExportCertificatePem(), Ct);
        var port = FreePort.Next();
        await using var host = await TestHost.StartAsync(configure: s => s.AddMqttBroker(new MqttBrokerOptions
        {
            Address = IPAddress.Loopback, Port = port, CertificateFile = pfx, CertificatePassword = "pfx-pass",
        }));

        var plain = await PubAsync(port, Topic(1), Payload(1, DateTime.UtcNow));
        var tls = await PubAsync(port, Topic(2), Payload(2, DateTime.UtcNow), "--cafile", ca);

        Assert.NotEqual(0, plain.Exit);
        Assert.True(tls.Exit == 0, tls.Output);
        Assert.NotNull(host.Live.Vehicle("0018/00002"));
        Assert.Null(host.Live.Vehicle("0018/00001"));
        Directory.Delete(dir, recursive: true);
    }

    [Fact]
    public async Task MqttUserCommand_PasswordOnStdin_WritesAHashTheBrokerAccepts()
    {
        var dir = Directory.CreateTempSubdirectory("fleet-users-").FullName;
        var file = Path.Combine(dir, "users.txt");
        var info = new ProcessStartInfo("dotnet") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { FleetProcess.Dll, "mqtt-user", file, "bus-0426" })
        {
            info.ArgumentList.Add(a);
        }

        using (var process = Process.Start(info)!)
        {
            await process.StandardInput.WriteLineAsync("s3cret");
            process.StandardInput.Close();
            await process.WaitForExitAsync(Ct);
            Assert.True(process.ExitCode == 0, await process.StandardError.ReadToEndAsync(Ct));
        }

        var users = MqttUsers.Load(file);
        Assert.True(users.Verify("bus-0426", "s3cret"));
        Assert.False(users.Verify("bus-0426", "s3cret "));
        Assert.False(users.Verify("other", "s3cret"));
        Assert.DoesNotContain("s3cret", await File.ReadAllTextAsync(file, Ct), StringComparison.Ordinal);
        Directory.Delete(dir, recursive: true);
    }

    private static async Task<JsonElement> HealthOfAsync(TestHost host, string name)
    {
        using var health = JsonDocument.Parse(await host.Http.GetStringAsync(new Uri("api/health", UriKind.Relative), Ct));
        return health.RootElement.GetProperty("sources").EnumerateArray().Single(s => s.GetProperty("name").GetString() == name).Clone();
    }

    private static async Task<(int Exit, string Output)> PubAsync(int port, string topic, string payload, params string[] more)
    {
        Assert.True(File.Exists(MosquittoPub), "mosquitto_pub is missing (test.sh installs mosquitto-clients)");
        var info = new ProcessStartInfo(MosquittoPub) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        // A client id of its own: MQTTnet's broker refuses an empty one under MQTT 3.1.1 (which the spec allows).
        var id = "fleet-test-" + Interlocked.Increment(ref s_clients).ToString(System.Globalization.CultureInfo.InvariantCulture);
        foreach (var a in new[] { "-h", more.Contains("--cafile") ? "localhost" : "127.0.0.1", "-p", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-i", id, "-q", "1", "-t", topic, "-m", payload }.Concat(more))
        {
            info.ArgumentList.Add(a);
        }

        using var process = Process.Start(info)!;
        var output = process.StandardError.ReadToEndAsync(Ct);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(20));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await output);
    }
}
