namespace Fleet.Actors.Tests;

/// <summary>Starts one throwaway PostgreSQL server for the PostgreSQL test classes.</summary>
public sealed class PostgresFixture : IAsyncLifetime
{
    public Fleet.Testing.PostgresServer Server { get; private set; } = null!;

    public async ValueTask InitializeAsync() => Server = await Fleet.Testing.PostgresServer.StartAsync();

    public async ValueTask DisposeAsync() => await Server.DisposeAsync();
}
