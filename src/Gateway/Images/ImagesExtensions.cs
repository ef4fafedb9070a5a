using System.Globalization;
using Gateway.Generations;
using Gateway.Hosting;
using Gateway.Storage;
using Gateway.Upstream;
using Microsoft.Extensions.Options;

namespace Gateway.Images;

internal static partial class ImagesExtensions
{
    /// <summary>
    /// The image store (<c>Images:Store</c>): copies of completed generations' images, served by the gateway, and fal asked to
    /// keep its own copy briefly. With <c>None</c> nothing is copied and results keep fal's URLs.
    /// </summary>
    public static IHostApplicationBuilder AddImages(this IHostApplicationBuilder builder)
    {
        builder.Services.AddValidatedOptions<ImagesOptions>(ImagesOptions.SectionName);
        builder.Services.AddOptions<FalSubmitHeaders>().Configure<IOptions<ImagesOptions>>((fal, images) =>
        {
            if (images.Value.Enabled)
            {
                var seconds = (long)Math.Ceiling(images.Value.FalExpiration.TotalSeconds);
                fal.Headers["X-Fal-Object-Lifecycle-Preference"] = string.Create(CultureInfo.InvariantCulture, $"{{\"expiration_duration_seconds\": {seconds}}}");
            }

            if (!images.Value.FalStoreIO)
            {
                fal.Headers["X-Fal-Store-IO"] = "0";
            }
        });

        builder.Services.AddSingleton<IImageStore>(services => services.GetRequiredService<IOptions<ImagesOptions>>().Value.Kind switch
        {
            ImageStoreKind.FileSystem => ActivatorUtilities.CreateInstance<FileSystemImageStore>(services),
            ImageStoreKind.AzureBlob => ActivatorUtilities.CreateInstance<AzureBlobImageStore>(services),
            _ => new NoImageStore(),
        });
        // SAS links replace the gateway's own image links (registered by AddGenerations) when configured.
        builder.Services.AddSingleton<GatewayImageLinks>();
        builder.Services.AddSingleton<IImageLinks>(services =>
            services.GetRequiredService<IOptions<ImagesOptions>>().Value is { Kind: ImageStoreKind.AzureBlob, AzureBlob.SasLinks: true }
                && services.GetRequiredService<IImageStore>() is AzureBlobImageStore blobs
                ? new BlobSasImageLinks(blobs, services.GetRequiredService<TimeProvider>())
                : services.GetRequiredService<GatewayImageLinks>());

        if (builder.UsesRedis())
        {
            builder.Services.AddSingleton<IImageCopySchedule, RedisImageCopySchedule>();
        }
        else
        {
            builder.Services.AddSingleton<IImageCopySchedule, InMemoryImageCopySchedule>();
        }

        // fal's CDN is public: no key, a few redirects at most; each copy attempt has its own time budget.
        builder.Services.AddHttpClient<ImageSources>(http => http.Timeout = Timeout.InfiniteTimeSpan)
            .ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler
            {
                AllowAutoRedirect = true,
                MaxAutomaticRedirections = 3,
                UseCookies = false,
                ConnectTimeout = TimeSpan.FromSeconds(15),
            });

        builder.Services.AddMetricsAtZero<ImageMetrics>();
        // A listener after the completion signal's: the end is announced first, the copy starts after.
        builder.Services.AddSingleton<ImageCopier>();
        builder.Services.AddHostedService(services => services.GetRequiredService<ImageCopier>());
        builder.Services.AddSingleton<IGenerationListener>(services => services.GetRequiredService<ImageCopier>());
        builder.Services.AddSingleton<ImageSweeper>();
        builder.Services.AddHostedService(services => services.GetRequiredService<ImageSweeper>());
        builder.Services.AddHostedService<ImageStoreAnnouncement>();
        return builder;
    }

    /// <summary>One line at start saying where images go.</summary>
    private sealed partial class ImageStoreAnnouncement(IOptions<ImagesOptions> options, IImageStore store, ILogger<ImageStoreAnnouncement> logger) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken)
        {
            var images = options.Value;
            switch (store)
            {
                case FileSystemImageStore files:
                    LogStore(logger, "a directory", files.Root);
                    break;
                case AzureBlobImageStore:
                    LogStore(logger, "Azure Blob Storage container", images.AzureBlob.Container);
                    break;
                default:
                    LogNone(logger);
                    break;
            }

            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        [LoggerMessage(Level = LogLevel.Information, Message = "Result images are copied to {Kind} {Where} and served by the gateway")]
        private static partial void LogStore(ILogger logger, string kind, string where);

        [LoggerMessage(Level = LogLevel.Information, Message = "No image store (Images__Store=None): results keep fal's image URLs")]
        private static partial void LogNone(ILogger logger);
    }
}
