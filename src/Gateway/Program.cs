using Gateway.Clients;
using Gateway.Generations;
using Gateway.Hosting;
using Gateway.Storage;
using Gateway.Upstream;

var builder = WebApplication.CreateBuilder(args);

builder.AddGatewayHosting();
builder.AddClientAuthentication();
builder.AddClientLimits();
builder.AddGenerationStore();
builder.AddFalUpstream();
builder.AddGenerations();

var app = builder.Build();

app.UseGatewayHosting();
app.UseAuthentication();
app.UseAuthorization();
app.UseIdempotency();

app.MapGatewayHosting();
app.MapGenerations();
app.MapUsage();

app.Run();

/// <summary>The entry point, visible to the tests' WebApplicationFactory.</summary>
public partial class Program;
