using Microsoft.Extensions.Options;

namespace Gateway.Hosting;

internal static class OptionsExtensions
{
    /// <summary>
    /// Binds <typeparamref name="TOptions"/> to <paramref name="sectionName"/>, checked by its DataAnnotations
    /// at start, so bad configuration stops the start naming the setting. Returns the builder for more rules.
    /// </summary>
    public static OptionsBuilder<TOptions> AddValidatedOptions<TOptions>(this IServiceCollection services, string sectionName)
        where TOptions : class
    {
        var builder = services.AddOptions<TOptions>().BindConfiguration(sectionName);
        services.AddSingleton<IValidateOptions<TOptions>>(new NamedDataAnnotations<TOptions>(sectionName));
        builder.ValidateOnStart();
        return builder;
    }
}
