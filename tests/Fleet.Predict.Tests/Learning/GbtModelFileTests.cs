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
}
