namespace Fleet.Actors.Tests;

public sealed class StableHashTests
{
    // Expected values: the published MurmurHash3_x86_32 vectors for "hello" and "Hello, world!" (seed 0), and
    // the rest computed with an independent Python implementation of the reference algorithm over UTF-8.
    [Theory]
    [InlineData("", 0x00000000u)]
    [InlineData("hello", 0x248bfa47u)]
    [InlineData("Hello, world!", 0xc0363e43u)]
    [InlineData("vehicle/1234", 0x251a5876u)]
    [InlineData("ÄÖ-bussi-55", 0x0818192cu)]
    public void Murmur3_KnownInputs_MatchReferenceImplementation(string input, uint expected) =>
        Assert.Equal(expected, StableHash.Murmur3(input));

    [Fact]
    public void ShardOf_LongId_SameAsShortPathEncoding()
    {
        var id = new string('x', 1000);
        Assert.Equal(StableHash.Murmur3(System.Text.Encoding.UTF8.GetBytes(id)), StableHash.Murmur3(id));
    }

    [Fact]
    public void ShardOf_ManyIds_SpreadOverAllShards()
    {
        var counts = new int[64];
        for (var i = 0; i < 64_000; i++)
        {
            counts[StableHash.ShardOf($"vehicle-{i}", 64)]++;
        }

        // 1000 expected per shard; a stable hash that clusters would leave shards near empty or double full.
        Assert.All(counts, c => Assert.InRange(c, 800, 1200));
    }
}
