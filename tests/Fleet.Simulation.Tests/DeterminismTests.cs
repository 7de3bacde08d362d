namespace Fleet.Simulation.Tests;

public sealed class DeterminismTests : IClassFixture<GeneratedCityFixture>
{
    private readonly GeneratedCityFixture _city;

    public DeterminismTests(GeneratedCityFixture city) => _city = city;

    [Fact]
    public void Generate_SameOptionsTwice_ByteIdenticalFiles()
    {
        var again = Directory.CreateTempSubdirectory("fleet-sim-again-").FullName;
        try
        {
            CityGenerator.Generate(GeneratedCityFixture.SmallCity, again);
            foreach (var name in new[] { CityGenerator.GtfsFileName, CityGenerator.RecordingFileName, CityGenerator.TruthFileName })
            {
                var a = File.ReadAllBytes(Path.Combine(_city.Directory, name));
                var b = File.ReadAllBytes(Path.Combine(again, name));
                Assert.True(a.AsSpan().SequenceEqual(b), $"{name} differs between two runs with the same options");
            }
        }
        finally
        {
            Directory.Delete(again, recursive: true);
        }
    }

    [Fact]
    public void Generate_OtherSeedSameCity_SameGtfsOtherDay()
    {
        var other = Directory.CreateTempSubdirectory("fleet-sim-seed-").FullName;
        try
        {
            CityGenerator.Generate(GeneratedCityFixture.SmallCity with { Seed = 8 }, other);
            Assert.Equal(
                File.ReadAllBytes(Path.Combine(_city.Directory, CityGenerator.GtfsFileName)),
                File.ReadAllBytes(Path.Combine(other, CityGenerator.GtfsFileName)));
            Assert.NotEqual(
                File.ReadAllBytes(Path.Combine(_city.Directory, CityGenerator.TruthFileName)),
                File.ReadAllBytes(Path.Combine(other, CityGenerator.TruthFileName)));
            Assert.NotEqual(
                File.ReadAllBytes(Path.Combine(_city.Directory, CityGenerator.RecordingFileName)),
                File.ReadAllBytes(Path.Combine(other, CityGenerator.RecordingFileName)));
        }
        finally
        {
            Directory.Delete(other, recursive: true);
        }
    }

    [Fact]
    public void Build_OtherCity_OtherNetwork()
    {
        var a = City.CityBuilder.Build(GeneratedCityFixture.SmallCity);
        var b = City.CityBuilder.Build(GeneratedCityFixture.SmallCity with { City = 4 });
        Assert.NotEqual(a.Stops.Select(s => s.Id), b.Stops.Select(s => s.Id));
    }

    [Fact]
    public void SimRandom_SameSeed_SameSequenceAndForksIndependent()
    {
        var a = SimRandom.Create(5, 1);
        var b = SimRandom.Create(5, 1);
        var c = SimRandom.Create(5, 2);
        var sa = Enumerable.Range(0, 100).Select(_ => a.NextUInt64()).ToArray();
        var sb = Enumerable.Range(0, 100).Select(_ => b.NextUInt64()).ToArray();
        var sc = Enumerable.Range(0, 100).Select(_ => c.NextUInt64()).ToArray();
        Assert.Equal(sa, sb);
        Assert.Empty(sa.Intersect(sc));
        var uniform = SimRandom.Create(9);
        var mean = Enumerable.Range(0, 20_000).Select(_ => uniform.NextDouble()).Average();
        Assert.InRange(mean, 0.48, 0.52);
    }
}
