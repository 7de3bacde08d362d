using System.Buffers;
using System.Text.Json;

namespace Fleet.Actors.Persistence;

/// <summary>Turns events and snapshots into bytes for the journal and back.</summary>
/// <typeparam name="T">The event or state type.</typeparam>
/// <remarks>Implementations must be thread-safe: one instance serves every entity of a type.</remarks>
public interface IPersistenceSerializer<T>
{
    /// <summary>Serializes <paramref name="value"/>.</summary>
    public byte[] Serialize(T value);

    /// <summary>Deserializes what <see cref="Serialize"/> produced.</summary>
    public T Deserialize(ReadOnlySpan<byte> data);
}

/// <summary>The default serializer: System.Text.Json, UTF-8.</summary>
/// <typeparam name="T">The event or state type. Use <c>[JsonDerivedType]</c> on a base event type for polymorphic events.</typeparam>
/// <remarks>Thread-safe.</remarks>
public sealed class JsonPersistenceSerializer<T> : IPersistenceSerializer<T>
{
    /// <summary>An instance with <see cref="JsonSerializerOptions.Default"/>.</summary>
    public static readonly JsonPersistenceSerializer<T> Default = new(JsonSerializerOptions.Default);

    private readonly JsonSerializerOptions _options;

    /// <summary>Creates a serializer with the given options.</summary>
    public JsonPersistenceSerializer(JsonSerializerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
    }

    /// <inheritdoc />
    public byte[] Serialize(T value) => JsonSerializer.SerializeToUtf8Bytes(value, _options);

    /// <inheritdoc />
    public T Deserialize(ReadOnlySpan<byte> data) =>
        JsonSerializer.Deserialize<T>(data, _options) ?? throw new JsonException($"null {typeof(T).Name} in the journal");
}
