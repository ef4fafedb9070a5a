namespace Gateway.Hosting;

internal static class DataProtectionStartup
{
    /// <summary>
    /// Authentication brings ASP.NET Core's data protection, which nothing here uses: link tickets are HMAC-signed with
    /// the gateway's own key, and no cookie is issued. Its start-up service would read, or create and write, an XML key
    /// ring under $HOME on every start (a read-only root filesystem refuses the write) and keep the XML stack loaded for
    /// the life of the process (about 5 MB of RSS). Data protection stays registered, so anything that asks still gets it.
    /// Call it after every <c>AddAuthentication</c>: each one adds the service again.
    /// </summary>
    public static IServiceCollection WithoutDataProtectionStartup(this IServiceCollection services)
    {
        foreach (var keyRingLoader in services.Where(d => d.ServiceType == typeof(IHostedService)
            && d.ImplementationType?.FullName == "Microsoft.AspNetCore.DataProtection.Internal.DataProtectionHostedService").ToList())
        {
            services.Remove(keyRingLoader);
        }

        return services;
    }
}
