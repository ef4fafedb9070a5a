namespace Gateway.Hosting;

/// <summary>The closed set of values a string property takes (or each item of a list of strings): the schema's <c>enum</c>.</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class ApiValuesAttribute(params string[] values) : Attribute
{
    public IReadOnlyList<string> Values { get; } = values;
}

/// <summary>A member of fal's own JSON that fal may leave out (or send as null): neither required nor non-null in the schema.</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class ApiOptionalAttribute : Attribute;

/// <summary>An object the gateway passes on from fal as it came: fields beyond those described may appear.</summary>
[AttributeUsage(AttributeTargets.Class)]
public sealed class ApiExtensibleAttribute : Attribute;

/// <summary>An example of the type's JSON for the document (checked against the type's own schema by the tests).</summary>
[AttributeUsage(AttributeTargets.Class)]
public sealed class ApiExampleAttribute(string json) : Attribute
{
    public string Json { get; } = json;
}

/// <summary>What an answer with this status means on this route (several are joined), for the OpenAPI document.</summary>
internal sealed record ResponseDescriptionMetadata(int Status, string Description);

/// <summary>
/// A header the route's answers with one of <see cref="Statuses"/> carry (always, when <see cref="Required"/>); status
/// <see cref="AnyOtherStatus"/> is the route's <c>default</c> answer.
/// </summary>
internal sealed record ResponseHeaderMetadata(string Name, string Description, IReadOnlyList<int> Statuses, bool Required, bool Integer = false, string? Example = null)
{
    public const int AnyOtherStatus = 0;
}

/// <summary>A request header the route honours.</summary>
internal sealed record RequestHeaderMetadata(string Name, string Description, bool Required = false, string? Example = null, int? MaxLength = null);

/// <summary>
/// The body a route reads itself (no parameter binds it), for the document only: unlike <c>Accepts</c>, it adds no
/// content-type check to routing (fal's webhook must reach its signature check whatever it declares).
/// </summary>
internal sealed record RequestBodyMetadata(Type Type, string ContentType, string Description);

/// <summary>The answer of any status not listed otherwise (OpenAPI's <c>default</c>).</summary>
internal sealed record DefaultResponseMetadata(Type Type, string Description, IReadOnlyList<string> ContentTypes);

/// <summary>The named events of a Server-Sent Events answer and the schema of each event's <c>data</c>.</summary>
internal sealed record ServerSentEventsMetadata(int Status, IReadOnlyDictionary<string, Type> Events);

/// <summary>
/// How a route describes its answers beyond the types its handler returns: problems with what they mean, headers,
/// event streams. Read by the OpenAPI document's operation filter; the handler's typed results give the rest.
/// </summary>
internal static class OpenApiRouteExtensions
{
    public const string ProblemContentType = "application/problem+json";

    /// <summary>An <c>application/problem+json</c> answer with <paramref name="status"/>, and when it is given.</summary>
    public static TBuilder ProducesProblemFor<TBuilder>(this TBuilder builder, int status, string description)
        where TBuilder : IEndpointConventionBuilder =>
        builder.WithMetadata(
            new ProducesResponseTypeMetadata(status, typeof(Problem), [ProblemContentType]),
            new ResponseDescriptionMetadata(status, description));

    /// <summary>What the answer with <paramref name="status"/> means (its type comes from the handler or from <c>Produces</c>).</summary>
    public static TBuilder DescribesResponse<TBuilder>(this TBuilder builder, int status, string description)
        where TBuilder : IEndpointConventionBuilder =>
        builder.WithMetadata(new ResponseDescriptionMetadata(status, description));

    public static TBuilder WithResponseHeader<TBuilder>(
        this TBuilder builder, string name, string description, int[] statuses, bool required = false, bool integer = false, string? example = null)
        where TBuilder : IEndpointConventionBuilder =>
        builder.WithMetadata(new ResponseHeaderMetadata(name, description, statuses, required, integer, example));

    public static TBuilder WithRequestHeader<TBuilder>(
        this TBuilder builder, string name, string description, bool required = false, string? example = null, int? maxLength = null)
        where TBuilder : IEndpointConventionBuilder =>
        builder.WithMetadata(new RequestHeaderMetadata(name, description, required, example, maxLength));

    /// <summary>The answer of any other status (<c>default</c>): <typeparamref name="T"/> as <paramref name="contentTypes"/>.</summary>
    public static RouteHandlerBuilder ProducesDefault<T>(this RouteHandlerBuilder builder, string description, params string[] contentTypes) =>
        builder.WithMetadata(new DefaultResponseMetadata(typeof(T), description, contentTypes));

    /// <summary>Documents the body the route reads itself, without asking routing to check its content type.</summary>
    public static RouteHandlerBuilder DocumentsRequestBody<T>(this RouteHandlerBuilder builder, string contentType, string description) =>
        builder.WithMetadata(new RequestBodyMetadata(typeof(T), contentType, description));

    /// <summary>A <c>text/event-stream</c> answer whose events are named, each with the type of its <c>data</c>.</summary>
    public static TBuilder ProducesServerSentEvents<TBuilder>(this TBuilder builder, int status, params (string Name, Type Data)[] events)
        where TBuilder : IEndpointConventionBuilder =>
        builder.WithMetadata(new ServerSentEventsMetadata(status, events.ToDictionary(e => e.Name, e => e.Data)));
}
