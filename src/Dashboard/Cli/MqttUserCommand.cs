using System.CommandLine;
using Fleet.Dashboard.Sources;

namespace Fleet.Dashboard.Cli;

/// <summary><c>fleet mqtt-user FILE USER</c>: adds (or replaces) a user of the embedded broker's users file.</summary>
internal static class MqttUserCommand
{
    public static Command Create()
    {
        var file = new Argument<FileInfo>("FILE") { Description = "The users file (created if missing)" };
        var user = new Argument<string>("USER") { Description = "The user name publishers log in with" };
        var password = new Option<string?>("--password") { Description = "The password; read from the first line of stdin when not given (keeps it out of the shell history)" };
        var cmd = new Command("mqtt-user", """
            Adds a user to the users file of fleet serve --mqtt-listen ... --mqtt-users FILE, or changes its password.
            Only a salted PBKDF2-SHA256 hash is written.

            Example: echo 's3cret' | fleet mqtt-user mqtt-users.txt bus-0426
            """)
        {
            file, user, password,
        };
        cmd.SetAction(async (parse, ct) =>
        {
            var name = parse.GetValue(user)!;
            if (name.Length == 0 || name.Contains(':', StringComparison.Ordinal) || name.Any(char.IsWhiteSpace))
            {
                await Console.Error.WriteLineAsync($"fleet mqtt-user: USER '{name}' must be non-empty, without ':' or spaces").ConfigureAwait(false);
                return 2;
            }

            var secret = parse.GetValue(password) ?? await Console.In.ReadLineAsync(ct).ConfigureAwait(false);
            if (string.IsNullOrEmpty(secret))
            {
                await Console.Error.WriteLineAsync("fleet mqtt-user: no password (give --password or one line on stdin)").ConfigureAwait(false);
                return 2;
            }

            var path = parse.GetValue(file)!.FullName;
            var lines = File.Exists(path)
                ? File.ReadAllLines(path).Where(l => !l.StartsWith(name + ":", StringComparison.Ordinal)).ToList()
                : [];
            lines.Add(MqttUsers.Line(name, secret));
            await File.WriteAllLinesAsync(path, lines, ct).ConfigureAwait(false);
            await Console.Out.WriteLineAsync($"{path}: user {name} {(lines.Count > 1 ? "written" : "added")}").ConfigureAwait(false);
            return 0;
        });
        return cmd;
    }
}
