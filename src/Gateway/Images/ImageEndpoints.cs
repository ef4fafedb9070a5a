using System.Globalization;
using System.Security.Claims;
using Gateway.Clients;
using Gateway.Generations;
using Gateway.Hosting;
using Gateway.Links;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;
using Microsoft.Net.Http.Headers;

namespace Gateway.Images;

internal static class ImageEndpoints
{
    public static RouteGroupBuilder MapImages(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1").RequireAuthorization().WithTags("Generations");
        group.MapGet("/generations/{id}/images/{n:int}", GetGenerationImage)
            .WithName(nameof(GetGenerationImage))
            .AcceptsLinkTicket(GenerationLinks.ImagesResource)
            .WithSummary("A result image from the gateway's image store")
            .WithDescription("Image n (from 0) of a completed generation whose images were copied to the gateway's image store "
                + "(image_copy: stored): the bytes fal made, with ETag, Cache-Control: private and range requests. The result's "
                + "image URLs point here and, when links are signed, carry a short-lived ticket, so a page's <img> opens them "
                + "without headers. 404, as for every generation route, when the generation is not the caller's, and when the "
                + "image is not in the store.")
            .Produces<Stream>(StatusCodes.Status200OK, contentType: "image/png", additionalContentTypes: ["image/jpeg", "image/webp", "image/gif"])
            .Produces<Stream>(StatusCodes.Status206PartialContent, contentType: "image/png", additionalContentTypes: ["image/jpeg", "image/webp", "image/gif"])
            .Produces(StatusCodes.Status304NotModified)
            .DescribesResponse(StatusCodes.Status200OK, "The image's bytes, as its content type.")
            .DescribesResponse(StatusCodes.Status206PartialContent, "The part of the image the Range header asked for (Content-Range says which).")
            .DescribesResponse(StatusCodes.Status304NotModified, "If-None-Match named the image's ETag: the copy the caller has is current.")
            .WithRequestHeader("Range", "A byte range of the image (one range, e.g. bytes=0-1023).", example: "bytes=0-1023")
            .WithRequestHeader("If-None-Match", "The ETag of a copy the caller has.")
            .WithResponseHeader("ETag", "The image's SHA-256, quoted.", [StatusCodes.Status200OK, StatusCodes.Status206PartialContent, StatusCodes.Status304NotModified])
            .WithResponseHeader("Content-Range", "Which bytes of the image the answer holds.", [StatusCodes.Status206PartialContent], required: true)
            .ProducesProblemFor(StatusCodes.Status404NotFound, "No generation with this id belongs to the caller, or image n of it is not in the image store.")
            .ProducesProblemFor(StatusCodes.Status416RangeNotSatisfiable, "The Range asked for lies outside the image.");
        return group;
    }

    public static async Task<Results<FileStreamHttpResult, ProblemHttpResult>> GetGenerationImage(
        string id, int n, ClaimsPrincipal user, GenerationService service, IImageStore images, IOptions<GenerationOptions> generationOptions,
        TimeProvider time, HttpResponse response, CancellationToken cancellationToken)
    {
        if (await service.FindAsync(user.Owner(), id, cancellationToken) is not { } record)
        {
            return GenerationProblems.NotFound(id);
        }

        if (record.StoredImages is not { } stored || n < 0 || n >= stored.Count
            || await images.OpenReadAsync(id, n, cancellationToken) is not { } content)
        {
            return TypedResults.Problem(
                title: "Image not found",
                detail: $"Generation '{id}' has no image {n} in the gateway's image store.",
                statusCode: StatusCodes.Status404NotFound,
                type: ProblemTypes.NotFound);
        }

        var image = stored[n];
        // Never changes, kept until its generation expires, and only for its owner (a shared cache must not keep it).
        var completed = record.CompletedAt ?? time.GetUtcNow();
        var maxAge = Math.Max(0, (long)(completed + generationOptions.Value.ResultTtl - time.GetUtcNow()).TotalSeconds);
        response.Headers.CacheControl = string.Create(CultureInfo.InvariantCulture, $"private, max-age={maxAge}, immutable");
        response.Headers.XContentTypeOptions = "nosniff";
        return TypedResults.Stream(content, image.ContentType, lastModified: completed,
            entityTag: new EntityTagHeaderValue($"\"{image.Sha256}\""), enableRangeProcessing: true);
    }
}
