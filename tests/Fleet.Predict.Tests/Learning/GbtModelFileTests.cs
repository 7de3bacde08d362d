using Fleet.Predict.Learning;

namespace Fleet.Predict.Tests.Learning;

public sealed class GbtModelFileTests
{
    private static GbtModel Trained()
    {
        var data = new Dataset(["a", "b"], 1000);
        var rng = new Pcg32(5);
        for (var i = 0; i < 1000; i++)
        {
            var a = (float)rng.NextDouble();
            var b = rng.NextDouble() < 0.1 ? float.NaN : (float)rng.NextDouble();
            data.Add([a, b], (a * 4) + (float.IsNaN(b) ? 1 : b), i);
        }

        return new GbtTrainer(new GbtOptions { MaxTrees = 25 }).FitT(data).Model;
    }

    [Fact]
    public void SaveLoad_RoundTrip_IdenticalPredictions()
    {
        var model = Trained();
        var bytes = GbtTrainerTests.Bytes(model);

        var loaded = GbtModel.Load(new MemoryStream(bytes));

        Assert.Equal(model.TreeCount, loaded.TreeCount);
        Assert.Equal(model.FeatureNames, loaded.FeatureNames);
        var rng = new Pcg32(9);
        for (var i = 0; i < 500; i++)
        {
            float[] row = [(float)rng.NextDouble(), i % 7 == 0 ? float.NaN : (float)rng.NextDouble()];
            Assert.Equal(model.Predict(row), loaded.Predict(row)); // bit-identical, not approximately
        }
    }

    [Fact]
    public void Load_WrongMagic_ClearError()
    {
        var e = Assert.Throws<InvalidDataException>(() => GbtModel.Load(new MemoryStream("hello world, not a model"u8.ToArray()), "x.bin"));
        Assert.Contains("x.bin", e.Message, StringComparison.Ordinal);
        Assert.Contains("not a Fleet gradient-boosted tree model", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_FutureVersion_ClearError()
    {
        var bytes = GbtTrainerTests.Bytes(Trained());
        bytes[8] = 99; // the u16 version follows the 8-byte magic

        var e = Assert.Throws<InvalidDataException>(() => GbtModel.Load(new MemoryStream(bytes)));
        Assert.Contains("version 99 is not supported", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_FlippedByte_ChecksumError()
    {
        var bytes = GbtTrainerTests.Bytes(Trained());
        bytes[bytes.Length / 2] ^= 0x40;

        var e = Assert.Throws<InvalidDataException>(() => GbtModel.Load(new MemoryStream(bytes)));
        Assert.Contains("corrupt", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_Truncated_CorruptError()
    {
        var bytes = GbtTrainerTests.Bytes(Trained());

        var e = Assert.Throws<InvalidDataException>(() => GbtModel.Load(new MemoryStream(bytes[..(bytes.Length - 5)])));
        Assert.Contains("corrupt", e.Message, StringComparison.Ordinal);
    }
}

public sealed class GbtModelBatchTests
{
    [Fact]
    public void PredictMany_EqualsPredict_BitForBit()
    {
        var data = new Dataset(["a", "b", "c"], 2000);
        var rng = new Pcg32(8);
        for (var i = 0; i < 2000; i++)
        {
            float[] row = [(float)rng.NextDouble(), (float)rng.NextDouble(), i % 9 == 0 ? float.NaN : (float)rng.NextDouble()];
            data.Add(row, (row[0] * 5) + (row[1] > 0.5f ? 2 : 0) + (float)rng.NextGaussian(), i);
        }

        var model = new GbtTrainer(new GbtOptions { MaxTrees = 60 }).FitT(data).Model;
        var output = new double[data.Rows];

        model.PredictMany(data.Features, data.Rows, output);

        for (var r = 0; r < data.Rows; r++)
        {
            Assert.Equal(model.Predict(data.Row(r)), output[r]);
        }
    }

    [Fact]
    public void PredictMany_VehicleShapedBatches_EqualsPerRowWalkBitForBit()
    {
        // Rows shaped like a vehicle's downstream stops: some columns shared by a batch, some varying per row,
        // some NaN/±∞/−0 and values exactly on thresholds; batches of 1 to 80 rows (two 64-row blocks at most).
        const int Columns = 12;
        var names = Enumerable.Range(0, Columns).Select(c => "f" + c).ToArray();
        var rng = new TestRng(21);
        var data = new Dataset(names, 6000);
        var row = new float[Columns];
        for (var i = 0; i < 6000; i++)
        {
            for (var c = 0; c < Columns; c++)
            {
                row[c] = (float)Math.Round(rng.NextDouble() * 100, 1);
            }

            data.Add(row, (row[0] * 0.3f) + (row[3] > 50 ? 20 : 0) + (row[5] * row[6] / 100) + (float)(5 * rng.NextGaussian()), i % 50);
        }

        var model = new GbtTrainer(new GbtOptions { MaxTrees = 120, MaxDepth = 7, MaxLeaves = 40, MinSamplesLeaf = 5 }).FitT(data).Model;
        float[] specials = [float.NaN, float.PositiveInfinity, float.NegativeInfinity, -0f, 0f, 50f, 50.05f];
        var checkedRows = 0;
        for (var batch = 1; batch <= 80; batch++)
        {
            var table = new float[batch * Columns];
            var shared = new float[Columns];
            for (var c = 0; c < Columns; c++)
            {
                shared[c] = (float)Math.Round(rng.NextDouble() * 100, 1);
            }

            for (var r = 0; r < batch; r++)
            {
                for (var c = 0; c < Columns; c++)
                {
                    var pick = rng.NextInt(10);
                    table[(r * Columns) + c] = c % 2 == 1 && pick < 8 ? shared[c]
                        : pick == 9 ? specials[rng.NextInt(specials.Length)]
                        : (float)Math.Round(rng.NextDouble() * 100, 1);
                }
            }

            var output = new double[batch];
            model.PredictMany(table, batch, output);
            for (var r = 0; r < batch; r++)
            {
                var expected = model.Predict(table.AsSpan(r * Columns, Columns));
                Assert.True(BitConverter.DoubleToInt64Bits(expected) == BitConverter.DoubleToInt64Bits(output[r]),
                    $"batch {batch} row {r}: PredictMany {output[r]:R}, per-row walk {expected:R}");
                checkedRows++;
            }
        }

        Assert.Equal(80 * 81 / 2, checkedRows);
    }
}
