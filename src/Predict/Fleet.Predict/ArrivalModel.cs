using System.Text;
using Fleet.Gtfs;
using Fleet.Predict.Learning;
using Fleet.Predict.Online;
using Fleet.Predict.Predictors;

namespace Fleet.Predict;

/// <summary>
/// What <c>fleet train</c> writes and <c>fleet evaluate</c> and the live platform read: the gradient-boosted
/// correction model, the historical profile it and the baselines start from, and each predictor's p10-p90 bands.
/// </summary>
/// <remarks>
/// <para>File format, version 2 (little endian; version 1 ends after the tree model and reads as trainer
/// <c>gbdt</c> with <see cref="ModelBlend.ModelOnly"/>):</para>
/// <code>
/// "FLEETARM"        8 bytes magic
/// u16 version       = 1
/// i32 payloadLength
/// payload:          i32 feature schema version, i32 n, n × feature name, string description,
///                   historical profile, i32 bands, bands × (string predictor, residual bands),
///                   i32 gbtLength, gbtLength bytes of a <see cref="GbtModel"/> file,
///                   string trainer, blend (i32 buckets, buckets × (u8 baseline, f64 weight))
/// u64 FNV-1a hash of the payload
/// </code>
/// <para>Immutable; thread-safe.</para>
/// </remarks>
public sealed class ArrivalModel
{
    /// <summary>The file magic.</summary>
    public static ReadOnlySpan<byte> Magic => "FLEETARM"u8;

    /// <summary>The file format version this build writes and reads.</summary>
    public const ushort FormatVersion = 2;

    /// <summary>Creates a model from its parts.</summary>
    /// <param name="gbt">The correction trees.</param>
    /// <param name="profile">The historical running and dwell times.</param>
    /// <param name="bands">Residual bands by predictor name.</param>
    /// <param name="description">What the model was trained on, for humans.</param>
    /// <param name="blend">How the trees are blended with the baselines by horizon; null for the trees alone.</param>
    /// <param name="trainer">The trainer that grew the trees (<c>gbdt</c>, <c>lightgbm</c>, <c>fasttree</c>).</param>
    public ArrivalModel(
        GbtModel gbt, HistoricalProfile profile, IReadOnlyDictionary<string, ResidualBands> bands, string description,
        ModelBlend? blend = null, string trainer = "gbdt")
    {
        ArgumentNullException.ThrowIfNull(gbt);
        ArgumentNullException.ThrowIfNull(profile);
        ArgumentNullException.ThrowIfNull(bands);
        ArgumentNullException.ThrowIfNull(description);
        if (gbt.FeatureCount != ArrivalFeatures.Count)
        {
            throw new ArgumentException($"the tree model has {gbt.FeatureCount} features; arrival features have {ArrivalFeatures.Count}");
        }

        Gbt = gbt;
        Profile = profile;
        Bands = bands;
        Description = description;
        Blend = blend ?? ModelBlend.ModelOnly;
        Trainer = trainer;
    }

    /// <summary>How the trees are blended with the baselines by horizon (chosen on held-out trips).</summary>
    public ModelBlend Blend { get; }

    /// <summary>The trainer that grew the trees.</summary>
    public string Trainer { get; }

    /// <summary>The correction model.</summary>
    public GbtModel Gbt { get; }

    /// <summary>The historical running and dwell times.</summary>
    public HistoricalProfile Profile { get; }

    /// <summary>Residual bands by predictor name.</summary>
    public IReadOnlyDictionary<string, ResidualBands> Bands { get; }

    /// <summary>What the model was trained on, for humans.</summary>
    public string Description { get; }

    /// <summary>Creates the four baselines and the model predictor against a schedule.</summary>
    public PredictorSet Bind(Schedule schedule)
    {
        ArgumentNullException.ThrowIfNull(schedule);
        var profile = BindProfile(Profile, schedule);
        return new PredictorSet(profile, Bands, Gbt, Blend);
    }

    /// <summary>Resolves a profile's stop ids against a schedule.</summary>
    public static BoundProfile BindProfile(HistoricalProfile profile, Schedule schedule)
    {
        ArgumentNullException.ThrowIfNull(profile);
        ArgumentNullException.ThrowIfNull(schedule);
        return profile.Bind(id => schedule.TryGetStop(id, out var s) ? s : -1);
    }

    /// <summary>Writes the model file.</summary>
    public void Save(string path)
    {
        using var stream = File.Create(path);
        Save(stream);
    }

    /// <summary>Writes the model to a stream.</summary>
    public void Save(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        using var payload = new MemoryStream();
        using (var w = new BinaryWriter(payload, Encoding.UTF8, leaveOpen: true))
        {
            w.Write(ArrivalFeatures.SchemaVersion);
            w.Write(ArrivalFeatures.Count);
            foreach (var name in ArrivalFeatures.Names)
            {
                w.Write(name);
            }

            w.Write(Description);
            Profile.Write(w);
            w.Write(Bands.Count);
            foreach (var (name, bands) in Bands.OrderBy(b => b.Key, StringComparer.Ordinal))
            {
                w.Write(name);
                bands.Write(w);
            }

            using var gbt = new MemoryStream();
            Gbt.Save(gbt);
            w.Write((int)gbt.Length);
            w.Write(gbt.GetBuffer(), 0, (int)gbt.Length);
            w.Write(Trainer);
            Blend.Write(w);
        }

        var bytes = payload.GetBuffer().AsSpan(0, (int)payload.Length);
        using var writer = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
        writer.Write(Magic);
        writer.Write(FormatVersion);
        writer.Write(bytes.Length);
        writer.Write(bytes);
        writer.Write(Fnv1a(bytes));
    }

    /// <summary>Reads a model file.</summary>
    /// <exception cref="InvalidDataException">Not a model file, an unsupported version, a different feature layout, or corrupt.</exception>
    public static ArrivalModel Load(string path)
    {
        using var stream = File.OpenRead(path);
        return Load(stream, path);
    }

    /// <summary>Reads a model from a stream; <paramref name="source"/> names it in errors.</summary>
    /// <exception cref="InvalidDataException">Not a model file, an unsupported version, a different feature layout, or corrupt.</exception>
    public static ArrivalModel Load(Stream stream, string source = "stream")
    {
        ArgumentNullException.ThrowIfNull(stream);
        using var reader = new BinaryReader(stream, Encoding.UTF8, leaveOpen: true);
        try
        {
            var magic = reader.ReadBytes(8);
            if (!magic.AsSpan().SequenceEqual(Magic))
            {
                throw new InvalidDataException($"{source}: not a Fleet arrival model (the file does not start with \"FLEETARM\")");
            }

            var version = reader.ReadUInt16();
            if (version is < 1 or > FormatVersion)
            {
                throw new InvalidDataException(
                    $"{source}: arrival model format version {version} is not supported (this build reads versions 1 to {FormatVersion})");
            }

            var length = reader.ReadInt32();
            if (length < 0 || (stream.CanSeek && length > stream.Length - stream.Position))
            {
                throw new InvalidDataException($"{source}: corrupt arrival model (payload length {length} exceeds the file)");
            }

            var payload = reader.ReadBytes(length);
            if (payload.Length != length)
            {
                throw new InvalidDataException($"{source}: corrupt arrival model (truncated)");
            }

            if (reader.ReadUInt64() != Fnv1a(payload))
            {
                throw new InvalidDataException($"{source}: corrupt arrival model (checksum mismatch)");
            }

            return ReadPayload(payload, version, source);
        }
        catch (EndOfStreamException e)
        {
            throw new InvalidDataException($"{source}: corrupt arrival model (truncated)", e);
        }
    }

    private static ArrivalModel ReadPayload(byte[] payload, ushort version, string source)
    {
        using var r = new BinaryReader(new MemoryStream(payload), Encoding.UTF8);
        var schema = r.ReadInt32();
        var count = r.ReadInt32();
        if (schema != ArrivalFeatures.SchemaVersion || count != ArrivalFeatures.Count)
        {
            throw new InvalidDataException(
                $"{source}: the model uses feature layout {schema} with {count} features; this build computes layout {ArrivalFeatures.SchemaVersion} with {ArrivalFeatures.Count} (retrain with fleet train)");
        }

        for (var i = 0; i < count; i++)
        {
            var name = r.ReadString();
            if (name != ArrivalFeatures.Names[i])
            {
                throw new InvalidDataException($"{source}: feature {i} is '{name}', expected '{ArrivalFeatures.Names[i]}' (retrain with fleet train)");
            }
        }

        var description = r.ReadString();
        var profile = HistoricalProfile.Read(r);
        var bandCount = r.ReadInt32();
        if (bandCount is < 0 or > 64)
        {
            throw new InvalidDataException($"{source}: corrupt arrival model ({bandCount} band tables)");
        }

        var bands = new Dictionary<string, ResidualBands>(StringComparer.Ordinal);
        for (var i = 0; i < bandCount; i++)
        {
            var name = r.ReadString();
            bands[name] = ResidualBands.Read(r);
        }

        var gbtLength = r.ReadInt32();
        if (gbtLength < 0 || gbtLength > payload.Length)
        {
            throw new InvalidDataException($"{source}: corrupt arrival model (tree model length {gbtLength})");
        }

        var gbt = GbtModel.Load(new MemoryStream(r.ReadBytes(gbtLength)), source);
        if (version < 2)
        {
            return new ArrivalModel(gbt, profile, bands, description);
        }

        var trainer = r.ReadString();
        var blend = ModelBlend.Read(r);
        return new ArrivalModel(gbt, profile, bands, description, blend, trainer);
    }

    private static ulong Fnv1a(ReadOnlySpan<byte> data)
    {
        unchecked
        {
            var h = 14695981039346656037UL;
            foreach (var b in data)
            {
                h = (h ^ b) * 1099511628211UL;
            }

            return h;
        }
    }
}

/// <summary>The predictors of one schedule: the four baselines and (when a model is given) the model.</summary>
/// <remarks>Immutable; thread-safe.</remarks>
public sealed class PredictorSet
{
    /// <summary>Creates the set; without <paramref name="gbt"/> only the baselines.</summary>
    /// <param name="profile">The historical profile every predictor shares.</param>
    /// <param name="bands">Residual bands by predictor name; null for defaults.</param>
    /// <param name="gbt">The model's trees; null for the baselines only.</param>
    /// <param name="blend">The model's blend with the baselines; null for the trees alone.</param>
    public PredictorSet(BoundProfile profile, IReadOnlyDictionary<string, ResidualBands>? bands = null, GbtModel? gbt = null, ModelBlend? blend = null)
    {
        ArgumentNullException.ThrowIfNull(profile);
        Profile = profile;
        ResidualBands? Band(string name) => bands is not null && bands.TryGetValue(name, out var b) ? b : null;
        var all = new List<IArrivalPredictor>
        {
            new SchedulePredictor(profile, Band("schedule")),
            new DelayPredictor(profile, Band("delay")),
            new HistoricalPredictor(profile, Band("historical")),
            new KalmanPredictor(profile, Band("kalman")),
        };
        if (gbt is not null)
        {
            Model = new ModelPredictor(gbt, profile, Band("model"), blend);
            all.Add(Model);
        }

        All = all;
    }

    /// <summary>The historical profile every predictor shares.</summary>
    public BoundProfile Profile { get; }

    /// <summary>All predictors, baselines first.</summary>
    public IReadOnlyList<IArrivalPredictor> All { get; }

    /// <summary>The model predictor, or null.</summary>
    public IArrivalPredictor? Model { get; }

    /// <summary>The best available predictor: the model when present, else the Kalman baseline.</summary>
    public IArrivalPredictor Best => Model ?? All[3];
}
