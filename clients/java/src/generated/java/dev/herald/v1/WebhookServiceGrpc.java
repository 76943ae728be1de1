package dev.herald.v1;

import static io.grpc.MethodDescriptor.generateFullMethodName;

/**
 * <pre>
 * The webhook delivery service.
 * </pre>
 */
@io.grpc.stub.annotations.GrpcGenerated
public final class WebhookServiceGrpc {

  private WebhookServiceGrpc() {}

  public static final java.lang.String SERVICE_NAME = "herald.v1.WebhookService";

  // Static method descriptors that strictly reflect the proto.
  private static volatile io.grpc.MethodDescriptor<dev.herald.v1.PublishRequest,
      dev.herald.v1.PublishResponse> getPublishMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "Publish",
      requestType = dev.herald.v1.PublishRequest.class,
      responseType = dev.herald.v1.PublishResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.herald.v1.PublishRequest,
      dev.herald.v1.PublishResponse> getPublishMethod() {
    io.grpc.MethodDescriptor<dev.herald.v1.PublishRequest, dev.herald.v1.PublishResponse> getPublishMethod;
    if ((getPublishMethod = WebhookServiceGrpc.getPublishMethod) == null) {
      synchronized (WebhookServiceGrpc.class) {
        if ((getPublishMethod = WebhookServiceGrpc.getPublishMethod) == null) {
          WebhookServiceGrpc.getPublishMethod = getPublishMethod =
              io.grpc.MethodDescriptor.<dev.herald.v1.PublishRequest, dev.herald.v1.PublishResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "Publish"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.herald.v1.PublishRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.herald.v1.PublishResponse.getDefaultInstance()))
              .setSchemaDescriptor(new WebhookServiceMethodDescriptorSupplier("Publish"))
              .build();
        }
      }
    }
    return getPublishMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.herald.v1.PublishBatchRequest,
      dev.herald.v1.PublishBatchResponse> getPublishBatchMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "PublishBatch",
      requestType = dev.herald.v1.PublishBatchRequest.class,
      responseType = dev.herald.v1.PublishBatchResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.herald.v1.PublishBatchRequest,
      dev.herald.v1.PublishBatchResponse> getPublishBatchMethod() {
    io.grpc.MethodDescriptor<dev.herald.v1.PublishBatchRequest, dev.herald.v1.PublishBatchResponse> getPublishBatchMethod;
    if ((getPublishBatchMethod = WebhookServiceGrpc.getPublishBatchMethod) == null) {
      synchronized (WebhookServiceGrpc.class) {
        if ((getPublishBatchMethod = WebhookServiceGrpc.getPublishBatchMethod) == null) {
          WebhookServiceGrpc.getPublishBatchMethod = getPublishBatchMethod =
              io.grpc.MethodDescriptor.<dev.herald.v1.PublishBatchRequest, dev.herald.v1.PublishBatchResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "PublishBatch"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.herald.v1.PublishBatchRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.herald.v1.PublishBatchResponse.getDefaultInstance()))
              .setSchemaDescriptor(new WebhookServiceMethodDescriptorSupplier("PublishBatch"))
              .build();
        }
      }
    }
    return getPublishBatchMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.herald.v1.RegisterEndpointRequest,
      dev.herald.v1.RegisterEndpointResponse> getRegisterEndpointMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "RegisterEndpoint",
      requestType = dev.herald.v1.RegisterEndpointRequest.class,
      responseType = dev.herald.v1.RegisterEndpointResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.herald.v1.RegisterEndpointRequest,
      dev.herald.v1.RegisterEndpointResponse> getRegisterEndpointMethod() {
    io.grpc.MethodDescriptor<dev.herald.v1.RegisterEndpointRequest, dev.herald.v1.RegisterEndpointResponse> getRegisterEndpointMethod;
    if ((getRegisterEndpointMethod = WebhookServiceGrpc.getRegisterEndpointMethod) == null) {
      synchronized (WebhookServiceGrpc.class) {
        if ((getRegisterEndpointMethod = WebhookServiceGrpc.getRegisterEndpointMethod) == null) {
          WebhookServiceGrpc.getRegisterEndpointMethod = getRegisterEndpointMethod =
              io.grpc.MethodDescriptor.<dev.herald.v1.RegisterEndpointRequest, dev.herald.v1.RegisterEndpointResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "RegisterEndpoint"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.herald.v1.RegisterEndpointRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.herald.v1.RegisterEndpointResponse.getDefaultInstance()))
              .setSchemaDescriptor(new WebhookServiceMethodDescriptorSupplier("RegisterEndpoint"))
              .build();
        }
      }
    }
    return getRegisterEndpointMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.herald.v1.GetEndpointRequest,
      dev.herald.v1.GetEndpointResponse> getGetEndpointMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "GetEndpoint",
      requestType = dev.herald.v1.GetEndpointRequest.class,
      responseType = dev.herald.v1.GetEndpointResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.herald.v1.GetEndpointRequest,
      dev.herald.v1.GetEndpointResponse> getGetEndpointMethod() {
    io.grpc.MethodDescriptor<dev.herald.v1.GetEndpointRequest, dev.herald.v1.GetEndpointResponse> getGetEndpointMethod;
    if ((getGetEndpointMethod = WebhookServiceGrpc.getGetEndpointMethod) == null) {
      synchronized (WebhookServiceGrpc.class) {
        if ((getGetEndpointMethod = WebhookServiceGrpc.getGetEndpointMethod) == null) {
          WebhookServiceGrpc.getGetEndpointMethod = getGetEndpointMethod =
              io.grpc.MethodDescriptor.<dev.herald.v1.GetEndpointRequest, dev.herald.v1.GetEndpointResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "GetEndpoint"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.herald.v1.GetEndpointRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.herald.v1.GetEndpointResponse.getDefaultInstance()))
              .setSchemaDescriptor(new WebhookServiceMethodDescriptorSupplier("GetEndpoint"))
              .build();
        }
      }
    }
    return getGetEndpointMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.herald.v1.ListEndpointsRequest,
      dev.herald.v1.ListEndpointsResponse> getListEndpointsMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "ListEndpoints",
      requestType = dev.herald.v1.ListEndpointsRequest.class,
      responseType = dev.herald.v1.ListEndpointsResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.herald.v1.ListEndpointsRequest,
      dev.herald.v1.ListEndpointsResponse> getListEndpointsMethod() {
    io.grpc.MethodDescriptor<dev.herald.v1.ListEndpointsRequest, dev.herald.v1.ListEndpointsResponse> getListEndpointsMethod;
    if ((getListEndpointsMethod = WebhookServiceGrpc.getListEndpointsMethod) == null) {
      synchronized (WebhookServiceGrpc.class) {
        if ((getListEndpointsMethod = WebhookServiceGrpc.getListEndpointsMethod) == null) {
          WebhookServiceGrpc.getListEndpointsMethod = getListEndpointsMethod =
              io.grpc.MethodDescriptor.<dev.herald.v1.ListEndpointsRequest, dev.herald.v1.ListEndpointsResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "ListEndpoints"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.herald.v1.ListEndpointsRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.herald.v1.ListEndpointsResponse.getDefaultInstance()))
              .setSchemaDescriptor(new WebhookServiceMethodDescriptorSupplier("ListEndpoints"))
              .build();
        }
      }
    }
    return getListEndpointsMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.herald.v1.UpdateEndpointRequest,
      dev.herald.v1.UpdateEndpointResponse> getUpdateEndpointMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "UpdateEndpoint",
      requestType = dev.herald.v1.UpdateEndpointRequest.class,
      responseType = dev.herald.v1.UpdateEndpointResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.herald.v1.UpdateEndpointRequest,
      dev.herald.v1.UpdateEndpointResponse> getUpdateEndpointMethod() {
    io.grpc.MethodDescriptor<dev.herald.v1.UpdateEndpointRequest, dev.herald.v1.UpdateEndpointResponse> getUpdateEndpointMethod;
    if ((getUpdateEndpointMethod = WebhookServiceGrpc.getUpdateEndpointMethod) == null) {
      synchronized (WebhookServiceGrpc.class) {
        if ((getUpdateEndpointMethod = WebhookServiceGrpc.getUpdateEndpointMethod) == null) {
          WebhookServiceGrpc.getUpdateEndpointMethod = getUpdateEndpointMethod =
              io.grpc.MethodDescriptor.<dev.herald.v1.UpdateEndpointRequest, dev.herald.v1.UpdateEndpointResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "UpdateEndpoint"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.herald.v1.UpdateEndpointRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.herald.v1.UpdateEndpointResponse.getDefaultInstance()))
              .setSchemaDescriptor(new WebhookServiceMethodDescriptorSupplier("UpdateEndpoint"))
              .build();
        }
      }
    }
    return getUpdateEndpointMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.herald.v1.DeleteEndpointRequest,
      dev.herald.v1.DeleteEndpointResponse> getDeleteEndpointMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "DeleteEndpoint",
      requestType = dev.herald.v1.DeleteEndpointRequest.class,
      responseType = dev.herald.v1.DeleteEndpointResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.herald.v1.DeleteEndpointRequest,
      dev.herald.v1.DeleteEndpointResponse> getDeleteEndpointMethod() {
    io.grpc.MethodDescriptor<dev.herald.v1.DeleteEndpointRequest, dev.herald.v1.DeleteEndpointResponse> getDeleteEndpointMethod;
    if ((getDeleteEndpointMethod = WebhookServiceGrpc.getDeleteEndpointMethod) == null) {
      synchronized (WebhookServiceGrpc.class) {
        if ((getDeleteEndpointMethod = WebhookServiceGrpc.getDeleteEndpointMethod) == null) {
          WebhookServiceGrpc.getDeleteEndpointMethod = getDeleteEndpointMethod =
              io.grpc.MethodDescriptor.<dev.herald.v1.DeleteEndpointRequest, dev.herald.v1.DeleteEndpointResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "DeleteEndpoint"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.herald.v1.DeleteEndpointRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.herald.v1.DeleteEndpointResponse.getDefaultInstance()))
              .setSchemaDescriptor(new WebhookServiceMethodDescriptorSupplier("DeleteEndpoint"))
              .build();
        }
      }
    }
    return getDeleteEndpointMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.herald.v1.RotateEndpointSecretRequest,
      dev.herald.v1.RotateEndpointSecretResponse> getRotateEndpointSecretMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "RotateEndpointSecret",
      requestType = dev.herald.v1.RotateEndpointSecretRequest.class,
      responseType = dev.herald.v1.RotateEndpointSecretResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.herald.v1.RotateEndpointSecretRequest,
      dev.herald.v1.RotateEndpointSecretResponse> getRotateEndpointSecretMethod() {
    io.grpc.MethodDescriptor<dev.herald.v1.RotateEndpointSecretRequest, dev.herald.v1.RotateEndpointSecretResponse> getRotateEndpointSecretMethod;
    if ((getRotateEndpointSecretMethod = WebhookServiceGrpc.getRotateEndpointSecretMethod) == null) {
      synchronized (WebhookServiceGrpc.class) {
        if ((getRotateEndpointSecretMethod = WebhookServiceGrpc.getRotateEndpointSecretMethod) == null) {
          WebhookServiceGrpc.getRotateEndpointSecretMethod = getRotateEndpointSecretMethod =
              io.grpc.MethodDescriptor.<dev.herald.v1.RotateEndpointSecretRequest, dev.herald.v1.RotateEndpointSecretResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "RotateEndpointSecret"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.herald.v1.RotateEndpointSecretRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.herald.v1.RotateEndpointSecretResponse.getDefaultInstance()))
              .setSchemaDescriptor(new WebhookServiceMethodDescriptorSupplier("RotateEndpointSecret"))
              .build();
        }
      }
    }
    return getRotateEndpointSecretMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.herald.v1.GetMessageRequest,
      dev.herald.v1.GetMessageResponse> getGetMessageMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "GetMessage",
      requestType = dev.herald.v1.GetMessageRequest.class,
      responseType = dev.herald.v1.GetMessageResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.herald.v1.GetMessageRequest,
      dev.herald.v1.GetMessageResponse> getGetMessageMethod() {
    io.grpc.MethodDescriptor<dev.herald.v1.GetMessageRequest, dev.herald.v1.GetMessageResponse> getGetMessageMethod;
    if ((getGetMessageMethod = WebhookServiceGrpc.getGetMessageMethod) == null) {
      synchronized (WebhookServiceGrpc.class) {
        if ((getGetMessageMethod = WebhookServiceGrpc.getGetMessageMethod) == null) {
          WebhookServiceGrpc.getGetMessageMethod = getGetMessageMethod =
              io.grpc.MethodDescriptor.<dev.herald.v1.GetMessageRequest, dev.herald.v1.GetMessageResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "GetMessage"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.herald.v1.GetMessageRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.herald.v1.GetMessageResponse.getDefaultInstance()))
              .setSchemaDescriptor(new WebhookServiceMethodDescriptorSupplier("GetMessage"))
              .build();
        }
      }
    }
    return getGetMessageMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.herald.v1.ListAttemptsRequest,
      dev.herald.v1.ListAttemptsResponse> getListAttemptsMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "ListAttempts",
      requestType = dev.herald.v1.ListAttemptsRequest.class,
      responseType = dev.herald.v1.ListAttemptsResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.herald.v1.ListAttemptsRequest,
      dev.herald.v1.ListAttemptsResponse> getListAttemptsMethod() {
    io.grpc.MethodDescriptor<dev.herald.v1.ListAttemptsRequest, dev.herald.v1.ListAttemptsResponse> getListAttemptsMethod;
    if ((getListAttemptsMethod = WebhookServiceGrpc.getListAttemptsMethod) == null) {
      synchronized (WebhookServiceGrpc.class) {
        if ((getListAttemptsMethod = WebhookServiceGrpc.getListAttemptsMethod) == null) {
          WebhookServiceGrpc.getListAttemptsMethod = getListAttemptsMethod =
              io.grpc.MethodDescriptor.<dev.herald.v1.ListAttemptsRequest, dev.herald.v1.ListAttemptsResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "ListAttempts"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.herald.v1.ListAttemptsRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.herald.v1.ListAttemptsResponse.getDefaultInstance()))
              .setSchemaDescriptor(new WebhookServiceMethodDescriptorSupplier("ListAttempts"))
              .build();
        }
      }
    }
    return getListAttemptsMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.herald.v1.RetryDeliveryRequest,
      dev.herald.v1.RetryDeliveryResponse> getRetryDeliveryMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "RetryDelivery",
      requestType = dev.herald.v1.RetryDeliveryRequest.class,
      responseType = dev.herald.v1.RetryDeliveryResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.herald.v1.RetryDeliveryRequest,
      dev.herald.v1.RetryDeliveryResponse> getRetryDeliveryMethod() {
    io.grpc.MethodDescriptor<dev.herald.v1.RetryDeliveryRequest, dev.herald.v1.RetryDeliveryResponse> getRetryDeliveryMethod;
    if ((getRetryDeliveryMethod = WebhookServiceGrpc.getRetryDeliveryMethod) == null) {
      synchronized (WebhookServiceGrpc.class) {
        if ((getRetryDeliveryMethod = WebhookServiceGrpc.getRetryDeliveryMethod) == null) {
          WebhookServiceGrpc.getRetryDeliveryMethod = getRetryDeliveryMethod =
              io.grpc.MethodDescriptor.<dev.herald.v1.RetryDeliveryRequest, dev.herald.v1.RetryDeliveryResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "RetryDelivery"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.herald.v1.RetryDeliveryRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.herald.v1.RetryDeliveryResponse.getDefaultInstance()))
              .setSchemaDescriptor(new WebhookServiceMethodDescriptorSupplier("RetryDelivery"))
              .build();
        }
      }
    }
    return getRetryDeliveryMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.herald.v1.ReplayMessageRequest,
      dev.herald.v1.ReplayMessageResponse> getReplayMessageMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "ReplayMessage",
      requestType = dev.herald.v1.ReplayMessageRequest.class,
      responseType = dev.herald.v1.ReplayMessageResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.herald.v1.ReplayMessageRequest,
      dev.herald.v1.ReplayMessageResponse> getReplayMessageMethod() {
    io.grpc.MethodDescriptor<dev.herald.v1.ReplayMessageRequest, dev.herald.v1.ReplayMessageResponse> getReplayMessageMethod;
    if ((getReplayMessageMethod = WebhookServiceGrpc.getReplayMessageMethod) == null) {
      synchronized (WebhookServiceGrpc.class) {
        if ((getReplayMessageMethod = WebhookServiceGrpc.getReplayMessageMethod) == null) {
          WebhookServiceGrpc.getReplayMessageMethod = getReplayMessageMethod =
              io.grpc.MethodDescriptor.<dev.herald.v1.ReplayMessageRequest, dev.herald.v1.ReplayMessageResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "ReplayMessage"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.herald.v1.ReplayMessageRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.herald.v1.ReplayMessageResponse.getDefaultInstance()))
              .setSchemaDescriptor(new WebhookServiceMethodDescriptorSupplier("ReplayMessage"))
              .build();
        }
      }
    }
    return getReplayMessageMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.herald.v1.ExpungeMessageRequest,
      dev.herald.v1.ExpungeMessageResponse> getExpungeMessageMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "ExpungeMessage",
      requestType = dev.herald.v1.ExpungeMessageRequest.class,
      responseType = dev.herald.v1.ExpungeMessageResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.herald.v1.ExpungeMessageRequest,
      dev.herald.v1.ExpungeMessageResponse> getExpungeMessageMethod() {
    io.grpc.MethodDescriptor<dev.herald.v1.ExpungeMessageRequest, dev.herald.v1.ExpungeMessageResponse> getExpungeMessageMethod;
    if ((getExpungeMessageMethod = WebhookServiceGrpc.getExpungeMessageMethod) == null) {
      synchronized (WebhookServiceGrpc.class) {
        if ((getExpungeMessageMethod = WebhookServiceGrpc.getExpungeMessageMethod) == null) {
          WebhookServiceGrpc.getExpungeMessageMethod = getExpungeMessageMethod =
              io.grpc.MethodDescriptor.<dev.herald.v1.ExpungeMessageRequest, dev.herald.v1.ExpungeMessageResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "ExpungeMessage"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.herald.v1.ExpungeMessageRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.herald.v1.ExpungeMessageResponse.getDefaultInstance()))
              .setSchemaDescriptor(new WebhookServiceMethodDescriptorSupplier("ExpungeMessage"))
              .build();
        }
      }
    }
    return getExpungeMessageMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.herald.v1.RecoverEndpointRequest,
      dev.herald.v1.RecoverEndpointResponse> getRecoverEndpointMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "RecoverEndpoint",
      requestType = dev.herald.v1.RecoverEndpointRequest.class,
      responseType = dev.herald.v1.RecoverEndpointResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.herald.v1.RecoverEndpointRequest,
      dev.herald.v1.RecoverEndpointResponse> getRecoverEndpointMethod() {
    io.grpc.MethodDescriptor<dev.herald.v1.RecoverEndpointRequest, dev.herald.v1.RecoverEndpointResponse> getRecoverEndpointMethod;
    if ((getRecoverEndpointMethod = WebhookServiceGrpc.getRecoverEndpointMethod) == null) {
      synchronized (WebhookServiceGrpc.class) {
        if ((getRecoverEndpointMethod = WebhookServiceGrpc.getRecoverEndpointMethod) == null) {
          WebhookServiceGrpc.getRecoverEndpointMethod = getRecoverEndpointMethod =
              io.grpc.MethodDescriptor.<dev.herald.v1.RecoverEndpointRequest, dev.herald.v1.RecoverEndpointResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "RecoverEndpoint"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.herald.v1.RecoverEndpointRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.herald.v1.RecoverEndpointResponse.getDefaultInstance()))
              .setSchemaDescriptor(new WebhookServiceMethodDescriptorSupplier("RecoverEndpoint"))
              .build();
        }
      }
    }
    return getRecoverEndpointMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.herald.v1.StreamDeliveryStatusRequest,
      dev.herald.v1.StreamDeliveryStatusResponse> getStreamDeliveryStatusMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "StreamDeliveryStatus",
      requestType = dev.herald.v1.StreamDeliveryStatusRequest.class,
      responseType = dev.herald.v1.StreamDeliveryStatusResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.SERVER_STREAMING)
  public static io.grpc.MethodDescriptor<dev.herald.v1.StreamDeliveryStatusRequest,
      dev.herald.v1.StreamDeliveryStatusResponse> getStreamDeliveryStatusMethod() {
    io.grpc.MethodDescriptor<dev.herald.v1.StreamDeliveryStatusRequest, dev.herald.v1.StreamDeliveryStatusResponse> getStreamDeliveryStatusMethod;
    if ((getStreamDeliveryStatusMethod = WebhookServiceGrpc.getStreamDeliveryStatusMethod) == null) {
      synchronized (WebhookServiceGrpc.class) {
        if ((getStreamDeliveryStatusMethod = WebhookServiceGrpc.getStreamDeliveryStatusMethod) == null) {
          WebhookServiceGrpc.getStreamDeliveryStatusMethod = getStreamDeliveryStatusMethod =
              io.grpc.MethodDescriptor.<dev.herald.v1.StreamDeliveryStatusRequest, dev.herald.v1.StreamDeliveryStatusResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.SERVER_STREAMING)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "StreamDeliveryStatus"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.herald.v1.StreamDeliveryStatusRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.herald.v1.StreamDeliveryStatusResponse.getDefaultInstance()))
              .setSchemaDescriptor(new WebhookServiceMethodDescriptorSupplier("StreamDeliveryStatus"))
              .build();
        }
      }
    }
    return getStreamDeliveryStatusMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.herald.v1.GetAnalyticsRequest,
      dev.herald.v1.GetAnalyticsResponse> getGetAnalyticsMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "GetAnalytics",
      requestType = dev.herald.v1.GetAnalyticsRequest.class,
      responseType = dev.herald.v1.GetAnalyticsResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.herald.v1.GetAnalyticsRequest,
      dev.herald.v1.GetAnalyticsResponse> getGetAnalyticsMethod() {
    io.grpc.MethodDescriptor<dev.herald.v1.GetAnalyticsRequest, dev.herald.v1.GetAnalyticsResponse> getGetAnalyticsMethod;
    if ((getGetAnalyticsMethod = WebhookServiceGrpc.getGetAnalyticsMethod) == null) {
      synchronized (WebhookServiceGrpc.class) {
        if ((getGetAnalyticsMethod = WebhookServiceGrpc.getGetAnalyticsMethod) == null) {
          WebhookServiceGrpc.getGetAnalyticsMethod = getGetAnalyticsMethod =
              io.grpc.MethodDescriptor.<dev.herald.v1.GetAnalyticsRequest, dev.herald.v1.GetAnalyticsResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "GetAnalytics"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.herald.v1.GetAnalyticsRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.herald.v1.GetAnalyticsResponse.getDefaultInstance()))
              .setSchemaDescriptor(new WebhookServiceMethodDescriptorSupplier("GetAnalytics"))
              .build();
        }
      }
    }
    return getGetAnalyticsMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.herald.v1.GetHealthRequest,
      dev.herald.v1.GetHealthResponse> getGetHealthMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "GetHealth",
      requestType = dev.herald.v1.GetHealthRequest.class,
      responseType = dev.herald.v1.GetHealthResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.herald.v1.GetHealthRequest,
      dev.herald.v1.GetHealthResponse> getGetHealthMethod() {
    io.grpc.MethodDescriptor<dev.herald.v1.GetHealthRequest, dev.herald.v1.GetHealthResponse> getGetHealthMethod;
    if ((getGetHealthMethod = WebhookServiceGrpc.getGetHealthMethod) == null) {
      synchronized (WebhookServiceGrpc.class) {
        if ((getGetHealthMethod = WebhookServiceGrpc.getGetHealthMethod) == null) {
          WebhookServiceGrpc.getGetHealthMethod = getGetHealthMethod =
              io.grpc.MethodDescriptor.<dev.herald.v1.GetHealthRequest, dev.herald.v1.GetHealthResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "GetHealth"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.herald.v1.GetHealthRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.herald.v1.GetHealthResponse.getDefaultInstance()))
              .setSchemaDescriptor(new WebhookServiceMethodDescriptorSupplier("GetHealth"))
              .build();
        }
      }
    }
    return getGetHealthMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.herald.v1.CreateApiKeyRequest,
      dev.herald.v1.CreateApiKeyResponse> getCreateApiKeyMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "CreateApiKey",
      requestType = dev.herald.v1.CreateApiKeyRequest.class,
      responseType = dev.herald.v1.CreateApiKeyResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.herald.v1.CreateApiKeyRequest,
      dev.herald.v1.CreateApiKeyResponse> getCreateApiKeyMethod() {
    io.grpc.MethodDescriptor<dev.herald.v1.CreateApiKeyRequest, dev.herald.v1.CreateApiKeyResponse> getCreateApiKeyMethod;
    if ((getCreateApiKeyMethod = WebhookServiceGrpc.getCreateApiKeyMethod) == null) {
      synchronized (WebhookServiceGrpc.class) {
        if ((getCreateApiKeyMethod = WebhookServiceGrpc.getCreateApiKeyMethod) == null) {
          WebhookServiceGrpc.getCreateApiKeyMethod = getCreateApiKeyMethod =
              io.grpc.MethodDescriptor.<dev.herald.v1.CreateApiKeyRequest, dev.herald.v1.CreateApiKeyResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "CreateApiKey"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.herald.v1.CreateApiKeyRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.herald.v1.CreateApiKeyResponse.getDefaultInstance()))
              .setSchemaDescriptor(new WebhookServiceMethodDescriptorSupplier("CreateApiKey"))
              .build();
        }
      }
    }
    return getCreateApiKeyMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.herald.v1.ListApiKeysRequest,
      dev.herald.v1.ListApiKeysResponse> getListApiKeysMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "ListApiKeys",
      requestType = dev.herald.v1.ListApiKeysRequest.class,
      responseType = dev.herald.v1.ListApiKeysResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.herald.v1.ListApiKeysRequest,
      dev.herald.v1.ListApiKeysResponse> getListApiKeysMethod() {
    io.grpc.MethodDescriptor<dev.herald.v1.ListApiKeysRequest, dev.herald.v1.ListApiKeysResponse> getListApiKeysMethod;
    if ((getListApiKeysMethod = WebhookServiceGrpc.getListApiKeysMethod) == null) {
      synchronized (WebhookServiceGrpc.class) {
        if ((getListApiKeysMethod = WebhookServiceGrpc.getListApiKeysMethod) == null) {
          WebhookServiceGrpc.getListApiKeysMethod = getListApiKeysMethod =
              io.grpc.MethodDescriptor.<dev.herald.v1.ListApiKeysRequest, dev.herald.v1.ListApiKeysResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "ListApiKeys"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.herald.v1.ListApiKeysRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.herald.v1.ListApiKeysResponse.getDefaultInstance()))
              .setSchemaDescriptor(new WebhookServiceMethodDescriptorSupplier("ListApiKeys"))
              .build();
        }
      }
    }
    return getListApiKeysMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.herald.v1.RevokeApiKeyRequest,
      dev.herald.v1.RevokeApiKeyResponse> getRevokeApiKeyMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "RevokeApiKey",
      requestType = dev.herald.v1.RevokeApiKeyRequest.class,
      responseType = dev.herald.v1.RevokeApiKeyResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.herald.v1.RevokeApiKeyRequest,
      dev.herald.v1.RevokeApiKeyResponse> getRevokeApiKeyMethod() {
    io.grpc.MethodDescriptor<dev.herald.v1.RevokeApiKeyRequest, dev.herald.v1.RevokeApiKeyResponse> getRevokeApiKeyMethod;
    if ((getRevokeApiKeyMethod = WebhookServiceGrpc.getRevokeApiKeyMethod) == null) {
      synchronized (WebhookServiceGrpc.class) {
        if ((getRevokeApiKeyMethod = WebhookServiceGrpc.getRevokeApiKeyMethod) == null) {
          WebhookServiceGrpc.getRevokeApiKeyMethod = getRevokeApiKeyMethod =
              io.grpc.MethodDescriptor.<dev.herald.v1.RevokeApiKeyRequest, dev.herald.v1.RevokeApiKeyResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "RevokeApiKey"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.herald.v1.RevokeApiKeyRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.herald.v1.RevokeApiKeyResponse.getDefaultInstance()))
              .setSchemaDescriptor(new WebhookServiceMethodDescriptorSupplier("RevokeApiKey"))
              .build();
        }
      }
    }
    return getRevokeApiKeyMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.herald.v1.ListTenantsRequest,
      dev.herald.v1.ListTenantsResponse> getListTenantsMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "ListTenants",
      requestType = dev.herald.v1.ListTenantsRequest.class,
      responseType = dev.herald.v1.ListTenantsResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.herald.v1.ListTenantsRequest,
      dev.herald.v1.ListTenantsResponse> getListTenantsMethod() {
    io.grpc.MethodDescriptor<dev.herald.v1.ListTenantsRequest, dev.herald.v1.ListTenantsResponse> getListTenantsMethod;
    if ((getListTenantsMethod = WebhookServiceGrpc.getListTenantsMethod) == null) {
      synchronized (WebhookServiceGrpc.class) {
        if ((getListTenantsMethod = WebhookServiceGrpc.getListTenantsMethod) == null) {
          WebhookServiceGrpc.getListTenantsMethod = getListTenantsMethod =
              io.grpc.MethodDescriptor.<dev.herald.v1.ListTenantsRequest, dev.herald.v1.ListTenantsResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "ListTenants"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.herald.v1.ListTenantsRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.herald.v1.ListTenantsResponse.getDefaultInstance()))
              .setSchemaDescriptor(new WebhookServiceMethodDescriptorSupplier("ListTenants"))
              .build();
        }
      }
    }
    return getListTenantsMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.herald.v1.DeleteTenantRequest,
      dev.herald.v1.DeleteTenantResponse> getDeleteTenantMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "DeleteTenant",
      requestType = dev.herald.v1.DeleteTenantRequest.class,
      responseType = dev.herald.v1.DeleteTenantResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.herald.v1.DeleteTenantRequest,
      dev.herald.v1.DeleteTenantResponse> getDeleteTenantMethod() {
    io.grpc.MethodDescriptor<dev.herald.v1.DeleteTenantRequest, dev.herald.v1.DeleteTenantResponse> getDeleteTenantMethod;
    if ((getDeleteTenantMethod = WebhookServiceGrpc.getDeleteTenantMethod) == null) {
      synchronized (WebhookServiceGrpc.class) {
        if ((getDeleteTenantMethod = WebhookServiceGrpc.getDeleteTenantMethod) == null) {
          WebhookServiceGrpc.getDeleteTenantMethod = getDeleteTenantMethod =
              io.grpc.MethodDescriptor.<dev.herald.v1.DeleteTenantRequest, dev.herald.v1.DeleteTenantResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "DeleteTenant"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.herald.v1.DeleteTenantRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.herald.v1.DeleteTenantResponse.getDefaultInstance()))
              .setSchemaDescriptor(new WebhookServiceMethodDescriptorSupplier("DeleteTenant"))
              .build();
        }
      }
    }
    return getDeleteTenantMethod;
  }

  /**
   * Creates a new async stub that supports all call types for the service
   */
  public static WebhookServiceStub newStub(io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<WebhookServiceStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<WebhookServiceStub>() {
        @java.lang.Override
        public WebhookServiceStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new WebhookServiceStub(channel, callOptions);
        }
      };
    return WebhookServiceStub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports all types of calls on the service
   */
  public static WebhookServiceBlockingV2Stub newBlockingV2Stub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<WebhookServiceBlockingV2Stub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<WebhookServiceBlockingV2Stub>() {
        @java.lang.Override
        public WebhookServiceBlockingV2Stub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new WebhookServiceBlockingV2Stub(channel, callOptions);
        }
      };
    return WebhookServiceBlockingV2Stub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports unary and streaming output calls on the service
   */
  public static WebhookServiceBlockingStub newBlockingStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<WebhookServiceBlockingStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<WebhookServiceBlockingStub>() {
        @java.lang.Override
        public WebhookServiceBlockingStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new WebhookServiceBlockingStub(channel, callOptions);
        }
      };
    return WebhookServiceBlockingStub.newStub(factory, channel);
  }

  /**
   * Creates a new ListenableFuture-style stub that supports unary calls on the service
   */
  public static WebhookServiceFutureStub newFutureStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<WebhookServiceFutureStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<WebhookServiceFutureStub>() {
        @java.lang.Override
        public WebhookServiceFutureStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new WebhookServiceFutureStub(channel, callOptions);
        }
      };
    return WebhookServiceFutureStub.newStub(factory, channel);
  }

  /**
   * <pre>
   * The webhook delivery service.
   * </pre>
   */
  public interface AsyncService {

    /**
     * <pre>
     * Stores one event and creates a delivery for every matching endpoint. OK means the
     * message and all its deliveries are durably committed.
     * </pre>
     */
    default void publish(dev.herald.v1.PublishRequest request,
        io.grpc.stub.StreamObserver<dev.herald.v1.PublishResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getPublishMethod(), responseObserver);
    }

    /**
     * <pre>
     * Publishes up to 1,000 events; each gets its own result.
     * </pre>
     */
    default void publishBatch(dev.herald.v1.PublishBatchRequest request,
        io.grpc.stub.StreamObserver<dev.herald.v1.PublishBatchResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getPublishBatchMethod(), responseObserver);
    }

    /**
     * <pre>
     * Creates an endpoint. The signing secret is returned here and on rotation only.
     * </pre>
     */
    default void registerEndpoint(dev.herald.v1.RegisterEndpointRequest request,
        io.grpc.stub.StreamObserver<dev.herald.v1.RegisterEndpointResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getRegisterEndpointMethod(), responseObserver);
    }

    /**
     */
    default void getEndpoint(dev.herald.v1.GetEndpointRequest request,
        io.grpc.stub.StreamObserver<dev.herald.v1.GetEndpointResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getGetEndpointMethod(), responseObserver);
    }

    /**
     */
    default void listEndpoints(dev.herald.v1.ListEndpointsRequest request,
        io.grpc.stub.StreamObserver<dev.herald.v1.ListEndpointsResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getListEndpointsMethod(), responseObserver);
    }

    /**
     * <pre>
     * Changes the fields named in `update_mask`.
     * </pre>
     */
    default void updateEndpoint(dev.herald.v1.UpdateEndpointRequest request,
        io.grpc.stub.StreamObserver<dev.herald.v1.UpdateEndpointResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getUpdateEndpointMethod(), responseObserver);
    }

    /**
     * <pre>
     * Deletes an endpoint and cancels its pending deliveries.
     * </pre>
     */
    default void deleteEndpoint(dev.herald.v1.DeleteEndpointRequest request,
        io.grpc.stub.StreamObserver<dev.herald.v1.DeleteEndpointResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getDeleteEndpointMethod(), responseObserver);
    }

    /**
     * <pre>
     * Issues a new secret; the previous one keeps signing alongside it for a grace period.
     * </pre>
     */
    default void rotateEndpointSecret(dev.herald.v1.RotateEndpointSecretRequest request,
        io.grpc.stub.StreamObserver<dev.herald.v1.RotateEndpointSecretResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getRotateEndpointSecretMethod(), responseObserver);
    }

    /**
     * <pre>
     * A message with the state of its delivery to every endpoint.
     * </pre>
     */
    default void getMessage(dev.herald.v1.GetMessageRequest request,
        io.grpc.stub.StreamObserver<dev.herald.v1.GetMessageResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getGetMessageMethod(), responseObserver);
    }

    /**
     * <pre>
     * Delivery attempts of a message and/or an endpoint, oldest first.
     * </pre>
     */
    default void listAttempts(dev.herald.v1.ListAttemptsRequest request,
        io.grpc.stub.StreamObserver<dev.herald.v1.ListAttemptsResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getListAttemptsMethod(), responseObserver);
    }

    /**
     * <pre>
     * Sends one message to one endpoint now, whatever the delivery's state.
     * </pre>
     */
    default void retryDelivery(dev.herald.v1.RetryDeliveryRequest request,
        io.grpc.stub.StreamObserver<dev.herald.v1.RetryDeliveryResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getRetryDeliveryMethod(), responseObserver);
    }

    /**
     * <pre>
     * Sends a message again to every endpoint that matches it now. An expunged message
     * cannot be replayed (FAILED_PRECONDITION).
     * </pre>
     */
    default void replayMessage(dev.herald.v1.ReplayMessageRequest request,
        io.grpc.stub.StreamObserver<dev.herald.v1.ReplayMessageResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getReplayMessageMethod(), responseObserver);
    }

    /**
     * <pre>
     * Removes a message's payload and its attempts' response excerpts at once, keeping the
     * record of what happened (ids, times, outcomes), and cancels its unfinished
     * deliveries. For erasure requests: nothing of the payload is sent or shown again.
     * </pre>
     */
    default void expungeMessage(dev.herald.v1.ExpungeMessageRequest request,
        io.grpc.stub.StreamObserver<dev.herald.v1.ExpungeMessageResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getExpungeMessageMethod(), responseObserver);
    }

    /**
     * <pre>
     * Queues again every delivery to the endpoint that failed since a time.
     * </pre>
     */
    default void recoverEndpoint(dev.herald.v1.RecoverEndpointRequest request,
        io.grpc.stub.StreamObserver<dev.herald.v1.RecoverEndpointResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getRecoverEndpointMethod(), responseObserver);
    }

    /**
     * <pre>
     * Live status of deliveries and endpoints. Every event carries a cursor; a client that
     * reconnects with `after_cursor` receives every retained event it missed, then the live
     * tail, with no gap and no duplicate. Heartbeats keep an idle stream open. A consumer
     * that falls too far behind is ended with RESOURCE_EXHAUSTED naming the cursor to
     * resume after; a cursor no longer retained, or beyond the newest event, is
     * OUT_OF_RANGE.
     * </pre>
     */
    default void streamDeliveryStatus(dev.herald.v1.StreamDeliveryStatusRequest request,
        io.grpc.stub.StreamObserver<dev.herald.v1.StreamDeliveryStatusResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getStreamDeliveryStatusMethod(), responseObserver);
    }

    /**
     * <pre>
     * Delivery figures for a time window, optionally for one endpoint or event type:
     * totals, success rate, latency percentiles, failures, top endpoints, hourly (and
     * daily) distribution, the trend against the window before, and a health score. Served
     * from per-minute rollups, so a 30-day window costs about as much as an hour.
     * </pre>
     */
    default void getAnalytics(dev.herald.v1.GetAnalyticsRequest request,
        io.grpc.stub.StreamObserver<dev.herald.v1.GetAnalyticsResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getGetAnalyticsMethod(), responseObserver);
    }

    /**
     * <pre>
     * The service's health with each check: storage, serving, backlog, circuits. The same
     * report is on the admin port's /healthz; grpc.health.v1 is NOT_SERVING while it is
     * unhealthy.
     * </pre>
     */
    default void getHealth(dev.herald.v1.GetHealthRequest request,
        io.grpc.stub.StreamObserver<dev.herald.v1.GetHealthResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getGetHealthMethod(), responseObserver);
    }

    /**
     * <pre>
     * Creates an API key (admin). Its token is in the response only: store it then.
     * </pre>
     */
    default void createApiKey(dev.herald.v1.CreateApiKeyRequest request,
        io.grpc.stub.StreamObserver<dev.herald.v1.CreateApiKeyResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getCreateApiKeyMethod(), responseObserver);
    }

    /**
     * <pre>
     * API keys, oldest first, revoked ones included; never their secrets (admin).
     * </pre>
     */
    default void listApiKeys(dev.herald.v1.ListApiKeysRequest request,
        io.grpc.stub.StreamObserver<dev.herald.v1.ListApiKeysResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getListApiKeysMethod(), responseObserver);
    }

    /**
     * <pre>
     * Revokes a key at once; on a shared store every instance refuses it within a second
     * (admin).
     * </pre>
     */
    default void revokeApiKey(dev.herald.v1.RevokeApiKeyRequest request,
        io.grpc.stub.StreamObserver<dev.herald.v1.RevokeApiKeyResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getRevokeApiKeyMethod(), responseObserver);
    }

    /**
     * <pre>
     * Tenants that have endpoints, with how many (admin).
     * </pre>
     */
    default void listTenants(dev.herald.v1.ListTenantsRequest request,
        io.grpc.stub.StreamObserver<dev.herald.v1.ListTenantsResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getListTenantsMethod(), responseObserver);
    }

    /**
     * <pre>
     * Deletes every endpoint of a tenant, cancels their unfinished deliveries and expunges
     * every message of the tenant (admin).
     * </pre>
     */
    default void deleteTenant(dev.herald.v1.DeleteTenantRequest request,
        io.grpc.stub.StreamObserver<dev.herald.v1.DeleteTenantResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getDeleteTenantMethod(), responseObserver);
    }
  }

  /**
   * Base class for the server implementation of the service WebhookService.
   * <pre>
   * The webhook delivery service.
   * </pre>
   */
  public static abstract class WebhookServiceImplBase
      implements io.grpc.BindableService, AsyncService {

    @java.lang.Override public final io.grpc.ServerServiceDefinition bindService() {
      return WebhookServiceGrpc.bindService(this);
    }
  }

  /**
   * A stub to allow clients to do asynchronous rpc calls to service WebhookService.
   * <pre>
   * The webhook delivery service.
   * </pre>
   */
  public static final class WebhookServiceStub
      extends io.grpc.stub.AbstractAsyncStub<WebhookServiceStub> {
    private WebhookServiceStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected WebhookServiceStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new WebhookServiceStub(channel, callOptions);
    }

    /**
     * <pre>
     * Stores one event and creates a delivery for every matching endpoint. OK means the
     * message and all its deliveries are durably committed.
     * </pre>
     */
    public void publish(dev.herald.v1.PublishRequest request,
        io.grpc.stub.StreamObserver<dev.herald.v1.PublishResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getPublishMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Publishes up to 1,000 events; each gets its own result.
     * </pre>
     */
    public void publishBatch(dev.herald.v1.PublishBatchRequest request,
        io.grpc.stub.StreamObserver<dev.herald.v1.PublishBatchResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getPublishBatchMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Creates an endpoint. The signing secret is returned here and on rotation only.
     * </pre>
     */
    public void registerEndpoint(dev.herald.v1.RegisterEndpointRequest request,
        io.grpc.stub.StreamObserver<dev.herald.v1.RegisterEndpointResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getRegisterEndpointMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     */
    public void getEndpoint(dev.herald.v1.GetEndpointRequest request,
        io.grpc.stub.StreamObserver<dev.herald.v1.GetEndpointResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getGetEndpointMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     */
    public void listEndpoints(dev.herald.v1.ListEndpointsRequest request,
        io.grpc.stub.StreamObserver<dev.herald.v1.ListEndpointsResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getListEndpointsMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Changes the fields named in `update_mask`.
     * </pre>
     */
    public void updateEndpoint(dev.herald.v1.UpdateEndpointRequest request,
        io.grpc.stub.StreamObserver<dev.herald.v1.UpdateEndpointResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getUpdateEndpointMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Deletes an endpoint and cancels its pending deliveries.
     * </pre>
     */
    public void deleteEndpoint(dev.herald.v1.DeleteEndpointRequest request,
        io.grpc.stub.StreamObserver<dev.herald.v1.DeleteEndpointResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getDeleteEndpointMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Issues a new secret; the previous one keeps signing alongside it for a grace period.
     * </pre>
     */
    public void rotateEndpointSecret(dev.herald.v1.RotateEndpointSecretRequest request,
        io.grpc.stub.StreamObserver<dev.herald.v1.RotateEndpointSecretResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getRotateEndpointSecretMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * A message with the state of its delivery to every endpoint.
     * </pre>
     */
    public void getMessage(dev.herald.v1.GetMessageRequest request,
        io.grpc.stub.StreamObserver<dev.herald.v1.GetMessageResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getGetMessageMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Delivery attempts of a message and/or an endpoint, oldest first.
     * </pre>
     */
    public void listAttempts(dev.herald.v1.ListAttemptsRequest request,
        io.grpc.stub.StreamObserver<dev.herald.v1.ListAttemptsResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getListAttemptsMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Sends one message to one endpoint now, whatever the delivery's state.
     * </pre>
     */
    public void retryDelivery(dev.herald.v1.RetryDeliveryRequest request,
        io.grpc.stub.StreamObserver<dev.herald.v1.RetryDeliveryResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getRetryDeliveryMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Sends a message again to every endpoint that matches it now. An expunged message
     * cannot be replayed (FAILED_PRECONDITION).
     * </pre>
     */
    public void replayMessage(dev.herald.v1.ReplayMessageRequest request,
        io.grpc.stub.StreamObserver<dev.herald.v1.ReplayMessageResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getReplayMessageMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Removes a message's payload and its attempts' response excerpts at once, keeping the
     * record of what happened (ids, times, outcomes), and cancels its unfinished
     * deliveries. For erasure requests: nothing of the payload is sent or shown again.
     * </pre>
     */
    public void expungeMessage(dev.herald.v1.ExpungeMessageRequest request,
        io.grpc.stub.StreamObserver<dev.herald.v1.ExpungeMessageResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getExpungeMessageMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Queues again every delivery to the endpoint that failed since a time.
     * </pre>
     */
    public void recoverEndpoint(dev.herald.v1.RecoverEndpointRequest request,
        io.grpc.stub.StreamObserver<dev.herald.v1.RecoverEndpointResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getRecoverEndpointMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Live status of deliveries and endpoints. Every event carries a cursor; a client that
     * reconnects with `after_cursor` receives every retained event it missed, then the live
     * tail, with no gap and no duplicate. Heartbeats keep an idle stream open. A consumer
     * that falls too far behind is ended with RESOURCE_EXHAUSTED naming the cursor to
     * resume after; a cursor no longer retained, or beyond the newest event, is
     * OUT_OF_RANGE.
     * </pre>
     */
    public void streamDeliveryStatus(dev.herald.v1.StreamDeliveryStatusRequest request,
        io.grpc.stub.StreamObserver<dev.herald.v1.StreamDeliveryStatusResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncServerStreamingCall(
          getChannel().newCall(getStreamDeliveryStatusMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Delivery figures for a time window, optionally for one endpoint or event type:
     * totals, success rate, latency percentiles, failures, top endpoints, hourly (and
     * daily) distribution, the trend against the window before, and a health score. Served
     * from per-minute rollups, so a 30-day window costs about as much as an hour.
     * </pre>
     */
    public void getAnalytics(dev.herald.v1.GetAnalyticsRequest request,
        io.grpc.stub.StreamObserver<dev.herald.v1.GetAnalyticsResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getGetAnalyticsMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * The service's health with each check: storage, serving, backlog, circuits. The same
     * report is on the admin port's /healthz; grpc.health.v1 is NOT_SERVING while it is
     * unhealthy.
     * </pre>
     */
    public void getHealth(dev.herald.v1.GetHealthRequest request,
        io.grpc.stub.StreamObserver<dev.herald.v1.GetHealthResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getGetHealthMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Creates an API key (admin). Its token is in the response only: store it then.
     * </pre>
     */
    public void createApiKey(dev.herald.v1.CreateApiKeyRequest request,
        io.grpc.stub.StreamObserver<dev.herald.v1.CreateApiKeyResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getCreateApiKeyMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * API keys, oldest first, revoked ones included; never their secrets (admin).
     * </pre>
     */
    public void listApiKeys(dev.herald.v1.ListApiKeysRequest request,
        io.grpc.stub.StreamObserver<dev.herald.v1.ListApiKeysResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getListApiKeysMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Revokes a key at once; on a shared store every instance refuses it within a second
     * (admin).
     * </pre>
     */
    public void revokeApiKey(dev.herald.v1.RevokeApiKeyRequest request,
        io.grpc.stub.StreamObserver<dev.herald.v1.RevokeApiKeyResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getRevokeApiKeyMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Tenants that have endpoints, with how many (admin).
     * </pre>
     */
    public void listTenants(dev.herald.v1.ListTenantsRequest request,
        io.grpc.stub.StreamObserver<dev.herald.v1.ListTenantsResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getListTenantsMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Deletes every endpoint of a tenant, cancels their unfinished deliveries and expunges
     * every message of the tenant (admin).
     * </pre>
     */
    public void deleteTenant(dev.herald.v1.DeleteTenantRequest request,
        io.grpc.stub.StreamObserver<dev.herald.v1.DeleteTenantResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getDeleteTenantMethod(), getCallOptions()), request, responseObserver);
    }
  }

  /**
   * A stub to allow clients to do synchronous rpc calls to service WebhookService.
   * <pre>
   * The webhook delivery service.
   * </pre>
   */
  public static final class WebhookServiceBlockingV2Stub
      extends io.grpc.stub.AbstractBlockingStub<WebhookServiceBlockingV2Stub> {
    private WebhookServiceBlockingV2Stub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected WebhookServiceBlockingV2Stub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new WebhookServiceBlockingV2Stub(channel, callOptions);
    }

    /**
     * <pre>
     * Stores one event and creates a delivery for every matching endpoint. OK means the
     * message and all its deliveries are durably committed.
     * </pre>
     */
    public dev.herald.v1.PublishResponse publish(dev.herald.v1.PublishRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getPublishMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Publishes up to 1,000 events; each gets its own result.
     * </pre>
     */
    public dev.herald.v1.PublishBatchResponse publishBatch(dev.herald.v1.PublishBatchRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getPublishBatchMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Creates an endpoint. The signing secret is returned here and on rotation only.
     * </pre>
     */
    public dev.herald.v1.RegisterEndpointResponse registerEndpoint(dev.herald.v1.RegisterEndpointRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getRegisterEndpointMethod(), getCallOptions(), request);
    }

    /**
     */
    public dev.herald.v1.GetEndpointResponse getEndpoint(dev.herald.v1.GetEndpointRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getGetEndpointMethod(), getCallOptions(), request);
    }

    /**
     */
    public dev.herald.v1.ListEndpointsResponse listEndpoints(dev.herald.v1.ListEndpointsRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getListEndpointsMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Changes the fields named in `update_mask`.
     * </pre>
     */
    public dev.herald.v1.UpdateEndpointResponse updateEndpoint(dev.herald.v1.UpdateEndpointRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getUpdateEndpointMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Deletes an endpoint and cancels its pending deliveries.
     * </pre>
     */
    public dev.herald.v1.DeleteEndpointResponse deleteEndpoint(dev.herald.v1.DeleteEndpointRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getDeleteEndpointMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Issues a new secret; the previous one keeps signing alongside it for a grace period.
     * </pre>
     */
    public dev.herald.v1.RotateEndpointSecretResponse rotateEndpointSecret(dev.herald.v1.RotateEndpointSecretRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getRotateEndpointSecretMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * A message with the state of its delivery to every endpoint.
     * </pre>
     */
    public dev.herald.v1.GetMessageResponse getMessage(dev.herald.v1.GetMessageRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getGetMessageMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Delivery attempts of a message and/or an endpoint, oldest first.
     * </pre>
     */
    public dev.herald.v1.ListAttemptsResponse listAttempts(dev.herald.v1.ListAttemptsRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getListAttemptsMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Sends one message to one endpoint now, whatever the delivery's state.
     * </pre>
     */
    public dev.herald.v1.RetryDeliveryResponse retryDelivery(dev.herald.v1.RetryDeliveryRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getRetryDeliveryMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Sends a message again to every endpoint that matches it now. An expunged message
     * cannot be replayed (FAILED_PRECONDITION).
     * </pre>
     */
    public dev.herald.v1.ReplayMessageResponse replayMessage(dev.herald.v1.ReplayMessageRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getReplayMessageMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Removes a message's payload and its attempts' response excerpts at once, keeping the
     * record of what happened (ids, times, outcomes), and cancels its unfinished
     * deliveries. For erasure requests: nothing of the payload is sent or shown again.
     * </pre>
     */
    public dev.herald.v1.ExpungeMessageResponse expungeMessage(dev.herald.v1.ExpungeMessageRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getExpungeMessageMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Queues again every delivery to the endpoint that failed since a time.
     * </pre>
     */
    public dev.herald.v1.RecoverEndpointResponse recoverEndpoint(dev.herald.v1.RecoverEndpointRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getRecoverEndpointMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Live status of deliveries and endpoints. Every event carries a cursor; a client that
     * reconnects with `after_cursor` receives every retained event it missed, then the live
     * tail, with no gap and no duplicate. Heartbeats keep an idle stream open. A consumer
     * that falls too far behind is ended with RESOURCE_EXHAUSTED naming the cursor to
     * resume after; a cursor no longer retained, or beyond the newest event, is
     * OUT_OF_RANGE.
     * </pre>
     */
    @io.grpc.ExperimentalApi("https://github.com/grpc/grpc-java/issues/10918")
    public io.grpc.stub.BlockingClientCall<?, dev.herald.v1.StreamDeliveryStatusResponse>
        streamDeliveryStatus(dev.herald.v1.StreamDeliveryStatusRequest request) {
      return io.grpc.stub.ClientCalls.blockingV2ServerStreamingCall(
          getChannel(), getStreamDeliveryStatusMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Delivery figures for a time window, optionally for one endpoint or event type:
     * totals, success rate, latency percentiles, failures, top endpoints, hourly (and
     * daily) distribution, the trend against the window before, and a health score. Served
     * from per-minute rollups, so a 30-day window costs about as much as an hour.
     * </pre>
     */
    public dev.herald.v1.GetAnalyticsResponse getAnalytics(dev.herald.v1.GetAnalyticsRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getGetAnalyticsMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * The service's health with each check: storage, serving, backlog, circuits. The same
     * report is on the admin port's /healthz; grpc.health.v1 is NOT_SERVING while it is
     * unhealthy.
     * </pre>
     */
    public dev.herald.v1.GetHealthResponse getHealth(dev.herald.v1.GetHealthRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getGetHealthMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Creates an API key (admin). Its token is in the response only: store it then.
     * </pre>
     */
    public dev.herald.v1.CreateApiKeyResponse createApiKey(dev.herald.v1.CreateApiKeyRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getCreateApiKeyMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * API keys, oldest first, revoked ones included; never their secrets (admin).
     * </pre>
     */
    public dev.herald.v1.ListApiKeysResponse listApiKeys(dev.herald.v1.ListApiKeysRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getListApiKeysMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Revokes a key at once; on a shared store every instance refuses it within a second
     * (admin).
     * </pre>
     */
    public dev.herald.v1.RevokeApiKeyResponse revokeApiKey(dev.herald.v1.RevokeApiKeyRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getRevokeApiKeyMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Tenants that have endpoints, with how many (admin).
     * </pre>
     */
    public dev.herald.v1.ListTenantsResponse listTenants(dev.herald.v1.ListTenantsRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getListTenantsMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Deletes every endpoint of a tenant, cancels their unfinished deliveries and expunges
     * every message of the tenant (admin).
     * </pre>
     */
    public dev.herald.v1.DeleteTenantResponse deleteTenant(dev.herald.v1.DeleteTenantRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getDeleteTenantMethod(), getCallOptions(), request);
    }
  }

  /**
   * A stub to allow clients to do limited synchronous rpc calls to service WebhookService.
   * <pre>
   * The webhook delivery service.
   * </pre>
   */
  public static final class WebhookServiceBlockingStub
      extends io.grpc.stub.AbstractBlockingStub<WebhookServiceBlockingStub> {
    private WebhookServiceBlockingStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected WebhookServiceBlockingStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new WebhookServiceBlockingStub(channel, callOptions);
    }

    /**
     * <pre>
     * Stores one event and creates a delivery for every matching endpoint. OK means the
     * message and all its deliveries are durably committed.
     * </pre>
     */
    public dev.herald.v1.PublishResponse publish(dev.herald.v1.PublishRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getPublishMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Publishes up to 1,000 events; each gets its own result.
     * </pre>
     */
    public dev.herald.v1.PublishBatchResponse publishBatch(dev.herald.v1.PublishBatchRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getPublishBatchMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Creates an endpoint. The signing secret is returned here and on rotation only.
     * </pre>
     */
    public dev.herald.v1.RegisterEndpointResponse registerEndpoint(dev.herald.v1.RegisterEndpointRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getRegisterEndpointMethod(), getCallOptions(), request);
    }

    /**
     */
    public dev.herald.v1.GetEndpointResponse getEndpoint(dev.herald.v1.GetEndpointRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getGetEndpointMethod(), getCallOptions(), request);
    }

    /**
     */
    public dev.herald.v1.ListEndpointsResponse listEndpoints(dev.herald.v1.ListEndpointsRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getListEndpointsMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Changes the fields named in `update_mask`.
     * </pre>
     */
    public dev.herald.v1.UpdateEndpointResponse updateEndpoint(dev.herald.v1.UpdateEndpointRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getUpdateEndpointMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Deletes an endpoint and cancels its pending deliveries.
     * </pre>
     */
    public dev.herald.v1.DeleteEndpointResponse deleteEndpoint(dev.herald.v1.DeleteEndpointRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getDeleteEndpointMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Issues a new secret; the previous one keeps signing alongside it for a grace period.
     * </pre>
     */
    public dev.herald.v1.RotateEndpointSecretResponse rotateEndpointSecret(dev.herald.v1.RotateEndpointSecretRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getRotateEndpointSecretMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * A message with the state of its delivery to every endpoint.
     * </pre>
     */
    public dev.herald.v1.GetMessageResponse getMessage(dev.herald.v1.GetMessageRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getGetMessageMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Delivery attempts of a message and/or an endpoint, oldest first.
     * </pre>
     */
    public dev.herald.v1.ListAttemptsResponse listAttempts(dev.herald.v1.ListAttemptsRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getListAttemptsMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Sends one message to one endpoint now, whatever the delivery's state.
     * </pre>
     */
    public dev.herald.v1.RetryDeliveryResponse retryDelivery(dev.herald.v1.RetryDeliveryRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getRetryDeliveryMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Sends a message again to every endpoint that matches it now. An expunged message
     * cannot be replayed (FAILED_PRECONDITION).
     * </pre>
     */
    public dev.herald.v1.ReplayMessageResponse replayMessage(dev.herald.v1.ReplayMessageRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getReplayMessageMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Removes a message's payload and its attempts' response excerpts at once, keeping the
     * record of what happened (ids, times, outcomes), and cancels its unfinished
     * deliveries. For erasure requests: nothing of the payload is sent or shown again.
     * </pre>
     */
    public dev.herald.v1.ExpungeMessageResponse expungeMessage(dev.herald.v1.ExpungeMessageRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getExpungeMessageMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Queues again every delivery to the endpoint that failed since a time.
     * </pre>
     */
    public dev.herald.v1.RecoverEndpointResponse recoverEndpoint(dev.herald.v1.RecoverEndpointRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getRecoverEndpointMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Live status of deliveries and endpoints. Every event carries a cursor; a client that
     * reconnects with `after_cursor` receives every retained event it missed, then the live
     * tail, with no gap and no duplicate. Heartbeats keep an idle stream open. A consumer
     * that falls too far behind is ended with RESOURCE_EXHAUSTED naming the cursor to
     * resume after; a cursor no longer retained, or beyond the newest event, is
     * OUT_OF_RANGE.
     * </pre>
     */
    public java.util.Iterator<dev.herald.v1.StreamDeliveryStatusResponse> streamDeliveryStatus(
        dev.herald.v1.StreamDeliveryStatusRequest request) {
      return io.grpc.stub.ClientCalls.blockingServerStreamingCall(
          getChannel(), getStreamDeliveryStatusMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Delivery figures for a time window, optionally for one endpoint or event type:
     * totals, success rate, latency percentiles, failures, top endpoints, hourly (and
     * daily) distribution, the trend against the window before, and a health score. Served
     * from per-minute rollups, so a 30-day window costs about as much as an hour.
     * </pre>
     */
    public dev.herald.v1.GetAnalyticsResponse getAnalytics(dev.herald.v1.GetAnalyticsRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getGetAnalyticsMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * The service's health with each check: storage, serving, backlog, circuits. The same
     * report is on the admin port's /healthz; grpc.health.v1 is NOT_SERVING while it is
     * unhealthy.
     * </pre>
     */
    public dev.herald.v1.GetHealthResponse getHealth(dev.herald.v1.GetHealthRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getGetHealthMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Creates an API key (admin). Its token is in the response only: store it then.
     * </pre>
     */
    public dev.herald.v1.CreateApiKeyResponse createApiKey(dev.herald.v1.CreateApiKeyRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getCreateApiKeyMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * API keys, oldest first, revoked ones included; never their secrets (admin).
     * </pre>
     */
    public dev.herald.v1.ListApiKeysResponse listApiKeys(dev.herald.v1.ListApiKeysRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getListApiKeysMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Revokes a key at once; on a shared store every instance refuses it within a second
     * (admin).
     * </pre>
     */
    public dev.herald.v1.RevokeApiKeyResponse revokeApiKey(dev.herald.v1.RevokeApiKeyRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getRevokeApiKeyMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Tenants that have endpoints, with how many (admin).
     * </pre>
     */
    public dev.herald.v1.ListTenantsResponse listTenants(dev.herald.v1.ListTenantsRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getListTenantsMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Deletes every endpoint of a tenant, cancels their unfinished deliveries and expunges
     * every message of the tenant (admin).
     * </pre>
     */
    public dev.herald.v1.DeleteTenantResponse deleteTenant(dev.herald.v1.DeleteTenantRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getDeleteTenantMethod(), getCallOptions(), request);
    }
  }

  /**
   * A stub to allow clients to do ListenableFuture-style rpc calls to service WebhookService.
   * <pre>
   * The webhook delivery service.
   * </pre>
   */
  public static final class WebhookServiceFutureStub
      extends io.grpc.stub.AbstractFutureStub<WebhookServiceFutureStub> {
    private WebhookServiceFutureStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected WebhookServiceFutureStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new WebhookServiceFutureStub(channel, callOptions);
    }

    /**
     * <pre>
     * Stores one event and creates a delivery for every matching endpoint. OK means the
     * message and all its deliveries are durably committed.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.herald.v1.PublishResponse> publish(
        dev.herald.v1.PublishRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getPublishMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Publishes up to 1,000 events; each gets its own result.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.herald.v1.PublishBatchResponse> publishBatch(
        dev.herald.v1.PublishBatchRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getPublishBatchMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Creates an endpoint. The signing secret is returned here and on rotation only.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.herald.v1.RegisterEndpointResponse> registerEndpoint(
        dev.herald.v1.RegisterEndpointRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getRegisterEndpointMethod(), getCallOptions()), request);
    }

    /**
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.herald.v1.GetEndpointResponse> getEndpoint(
        dev.herald.v1.GetEndpointRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getGetEndpointMethod(), getCallOptions()), request);
    }

    /**
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.herald.v1.ListEndpointsResponse> listEndpoints(
        dev.herald.v1.ListEndpointsRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getListEndpointsMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Changes the fields named in `update_mask`.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.herald.v1.UpdateEndpointResponse> updateEndpoint(
        dev.herald.v1.UpdateEndpointRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getUpdateEndpointMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Deletes an endpoint and cancels its pending deliveries.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.herald.v1.DeleteEndpointResponse> deleteEndpoint(
        dev.herald.v1.DeleteEndpointRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getDeleteEndpointMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Issues a new secret; the previous one keeps signing alongside it for a grace period.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.herald.v1.RotateEndpointSecretResponse> rotateEndpointSecret(
        dev.herald.v1.RotateEndpointSecretRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getRotateEndpointSecretMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * A message with the state of its delivery to every endpoint.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.herald.v1.GetMessageResponse> getMessage(
        dev.herald.v1.GetMessageRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getGetMessageMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Delivery attempts of a message and/or an endpoint, oldest first.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.herald.v1.ListAttemptsResponse> listAttempts(
        dev.herald.v1.ListAttemptsRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getListAttemptsMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Sends one message to one endpoint now, whatever the delivery's state.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.herald.v1.RetryDeliveryResponse> retryDelivery(
        dev.herald.v1.RetryDeliveryRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getRetryDeliveryMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Sends a message again to every endpoint that matches it now. An expunged message
     * cannot be replayed (FAILED_PRECONDITION).
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.herald.v1.ReplayMessageResponse> replayMessage(
        dev.herald.v1.ReplayMessageRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getReplayMessageMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Removes a message's payload and its attempts' response excerpts at once, keeping the
     * record of what happened (ids, times, outcomes), and cancels its unfinished
     * deliveries. For erasure requests: nothing of the payload is sent or shown again.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.herald.v1.ExpungeMessageResponse> expungeMessage(
        dev.herald.v1.ExpungeMessageRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getExpungeMessageMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Queues again every delivery to the endpoint that failed since a time.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.herald.v1.RecoverEndpointResponse> recoverEndpoint(
        dev.herald.v1.RecoverEndpointRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getRecoverEndpointMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Delivery figures for a time window, optionally for one endpoint or event type:
     * totals, success rate, latency percentiles, failures, top endpoints, hourly (and
     * daily) distribution, the trend against the window before, and a health score. Served
     * from per-minute rollups, so a 30-day window costs about as much as an hour.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.herald.v1.GetAnalyticsResponse> getAnalytics(
        dev.herald.v1.GetAnalyticsRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getGetAnalyticsMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * The service's health with each check: storage, serving, backlog, circuits. The same
     * report is on the admin port's /healthz; grpc.health.v1 is NOT_SERVING while it is
     * unhealthy.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.herald.v1.GetHealthResponse> getHealth(
        dev.herald.v1.GetHealthRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getGetHealthMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Creates an API key (admin). Its token is in the response only: store it then.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.herald.v1.CreateApiKeyResponse> createApiKey(
        dev.herald.v1.CreateApiKeyRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getCreateApiKeyMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * API keys, oldest first, revoked ones included; never their secrets (admin).
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.herald.v1.ListApiKeysResponse> listApiKeys(
        dev.herald.v1.ListApiKeysRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getListApiKeysMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Revokes a key at once; on a shared store every instance refuses it within a second
     * (admin).
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.herald.v1.RevokeApiKeyResponse> revokeApiKey(
        dev.herald.v1.RevokeApiKeyRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getRevokeApiKeyMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Tenants that have endpoints, with how many (admin).
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.herald.v1.ListTenantsResponse> listTenants(
        dev.herald.v1.ListTenantsRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getListTenantsMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Deletes every endpoint of a tenant, cancels their unfinished deliveries and expunges
     * every message of the tenant (admin).
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.herald.v1.DeleteTenantResponse> deleteTenant(
        dev.herald.v1.DeleteTenantRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getDeleteTenantMethod(), getCallOptions()), request);
    }
  }

  private static final int METHODID_PUBLISH = 0;
  private static final int METHODID_PUBLISH_BATCH = 1;
  private static final int METHODID_REGISTER_ENDPOINT = 2;
  private static final int METHODID_GET_ENDPOINT = 3;
  private static final int METHODID_LIST_ENDPOINTS = 4;
  private static final int METHODID_UPDATE_ENDPOINT = 5;
  private static final int METHODID_DELETE_ENDPOINT = 6;
  private static final int METHODID_ROTATE_ENDPOINT_SECRET = 7;
  private static final int METHODID_GET_MESSAGE = 8;
  private static final int METHODID_LIST_ATTEMPTS = 9;
  private static final int METHODID_RETRY_DELIVERY = 10;
  private static final int METHODID_REPLAY_MESSAGE = 11;
  private static final int METHODID_EXPUNGE_MESSAGE = 12;
  private static final int METHODID_RECOVER_ENDPOINT = 13;
  private static final int METHODID_STREAM_DELIVERY_STATUS = 14;
  private static final int METHODID_GET_ANALYTICS = 15;
  private static final int METHODID_GET_HEALTH = 16;
  private static final int METHODID_CREATE_API_KEY = 17;
  private static final int METHODID_LIST_API_KEYS = 18;
  private static final int METHODID_REVOKE_API_KEY = 19;
  private static final int METHODID_LIST_TENANTS = 20;
  private static final int METHODID_DELETE_TENANT = 21;

  private static final class MethodHandlers<Req, Resp> implements
      io.grpc.stub.ServerCalls.UnaryMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.ServerStreamingMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.ClientStreamingMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.BidiStreamingMethod<Req, Resp> {
    private final AsyncService serviceImpl;
    private final int methodId;

    MethodHandlers(AsyncService serviceImpl, int methodId) {
      this.serviceImpl = serviceImpl;
      this.methodId = methodId;
    }

    @java.lang.Override
    @java.lang.SuppressWarnings("unchecked")
    public void invoke(Req request, io.grpc.stub.StreamObserver<Resp> responseObserver) {
      switch (methodId) {
        case METHODID_PUBLISH:
          serviceImpl.publish((dev.herald.v1.PublishRequest) request,
              (io.grpc.stub.StreamObserver<dev.herald.v1.PublishResponse>) responseObserver);
          break;
        case METHODID_PUBLISH_BATCH:
          serviceImpl.publishBatch((dev.herald.v1.PublishBatchRequest) request,
              (io.grpc.stub.StreamObserver<dev.herald.v1.PublishBatchResponse>) responseObserver);
          break;
        case METHODID_REGISTER_ENDPOINT:
          serviceImpl.registerEndpoint((dev.herald.v1.RegisterEndpointRequest) request,
              (io.grpc.stub.StreamObserver<dev.herald.v1.RegisterEndpointResponse>) responseObserver);
          break;
        case METHODID_GET_ENDPOINT:
          serviceImpl.getEndpoint((dev.herald.v1.GetEndpointRequest) request,
              (io.grpc.stub.StreamObserver<dev.herald.v1.GetEndpointResponse>) responseObserver);
          break;
        case METHODID_LIST_ENDPOINTS:
          serviceImpl.listEndpoints((dev.herald.v1.ListEndpointsRequest) request,
              (io.grpc.stub.StreamObserver<dev.herald.v1.ListEndpointsResponse>) responseObserver);
          break;
        case METHODID_UPDATE_ENDPOINT:
          serviceImpl.updateEndpoint((dev.herald.v1.UpdateEndpointRequest) request,
              (io.grpc.stub.StreamObserver<dev.herald.v1.UpdateEndpointResponse>) responseObserver);
          break;
        case METHODID_DELETE_ENDPOINT:
          serviceImpl.deleteEndpoint((dev.herald.v1.DeleteEndpointRequest) request,
              (io.grpc.stub.StreamObserver<dev.herald.v1.DeleteEndpointResponse>) responseObserver);
          break;
        case METHODID_ROTATE_ENDPOINT_SECRET:
          serviceImpl.rotateEndpointSecret((dev.herald.v1.RotateEndpointSecretRequest) request,
              (io.grpc.stub.StreamObserver<dev.herald.v1.RotateEndpointSecretResponse>) responseObserver);
          break;
        case METHODID_GET_MESSAGE:
          serviceImpl.getMessage((dev.herald.v1.GetMessageRequest) request,
              (io.grpc.stub.StreamObserver<dev.herald.v1.GetMessageResponse>) responseObserver);
          break;
        case METHODID_LIST_ATTEMPTS:
          serviceImpl.listAttempts((dev.herald.v1.ListAttemptsRequest) request,
              (io.grpc.stub.StreamObserver<dev.herald.v1.ListAttemptsResponse>) responseObserver);
          break;
        case METHODID_RETRY_DELIVERY:
          serviceImpl.retryDelivery((dev.herald.v1.RetryDeliveryRequest) request,
              (io.grpc.stub.StreamObserver<dev.herald.v1.RetryDeliveryResponse>) responseObserver);
          break;
        case METHODID_REPLAY_MESSAGE:
          serviceImpl.replayMessage((dev.herald.v1.ReplayMessageRequest) request,
              (io.grpc.stub.StreamObserver<dev.herald.v1.ReplayMessageResponse>) responseObserver);
          break;
        case METHODID_EXPUNGE_MESSAGE:
          serviceImpl.expungeMessage((dev.herald.v1.ExpungeMessageRequest) request,
              (io.grpc.stub.StreamObserver<dev.herald.v1.ExpungeMessageResponse>) responseObserver);
          break;
        case METHODID_RECOVER_ENDPOINT:
          serviceImpl.recoverEndpoint((dev.herald.v1.RecoverEndpointRequest) request,
              (io.grpc.stub.StreamObserver<dev.herald.v1.RecoverEndpointResponse>) responseObserver);
          break;
        case METHODID_STREAM_DELIVERY_STATUS:
          serviceImpl.streamDeliveryStatus((dev.herald.v1.StreamDeliveryStatusRequest) request,
              (io.grpc.stub.StreamObserver<dev.herald.v1.StreamDeliveryStatusResponse>) responseObserver);
          break;
        case METHODID_GET_ANALYTICS:
          serviceImpl.getAnalytics((dev.herald.v1.GetAnalyticsRequest) request,
              (io.grpc.stub.StreamObserver<dev.herald.v1.GetAnalyticsResponse>) responseObserver);
          break;
        case METHODID_GET_HEALTH:
          serviceImpl.getHealth((dev.herald.v1.GetHealthRequest) request,
              (io.grpc.stub.StreamObserver<dev.herald.v1.GetHealthResponse>) responseObserver);
          break;
        case METHODID_CREATE_API_KEY:
          serviceImpl.createApiKey((dev.herald.v1.CreateApiKeyRequest) request,
              (io.grpc.stub.StreamObserver<dev.herald.v1.CreateApiKeyResponse>) responseObserver);
          break;
        case METHODID_LIST_API_KEYS:
          serviceImpl.listApiKeys((dev.herald.v1.ListApiKeysRequest) request,
              (io.grpc.stub.StreamObserver<dev.herald.v1.ListApiKeysResponse>) responseObserver);
          break;
        case METHODID_REVOKE_API_KEY:
          serviceImpl.revokeApiKey((dev.herald.v1.RevokeApiKeyRequest) request,
              (io.grpc.stub.StreamObserver<dev.herald.v1.RevokeApiKeyResponse>) responseObserver);
          break;
        case METHODID_LIST_TENANTS:
          serviceImpl.listTenants((dev.herald.v1.ListTenantsRequest) request,
              (io.grpc.stub.StreamObserver<dev.herald.v1.ListTenantsResponse>) responseObserver);
          break;
        case METHODID_DELETE_TENANT:
          serviceImpl.deleteTenant((dev.herald.v1.DeleteTenantRequest) request,
              (io.grpc.stub.StreamObserver<dev.herald.v1.DeleteTenantResponse>) responseObserver);
          break;
        default:
          throw new AssertionError();
      }
    }

    @java.lang.Override
    @java.lang.SuppressWarnings("unchecked")
    public io.grpc.stub.StreamObserver<Req> invoke(
        io.grpc.stub.StreamObserver<Resp> responseObserver) {
      switch (methodId) {
        default:
          throw new AssertionError();
      }
    }
  }

  public static final io.grpc.ServerServiceDefinition bindService(AsyncService service) {
    return io.grpc.ServerServiceDefinition.builder(getServiceDescriptor())
        .addMethod(
          getPublishMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.herald.v1.PublishRequest,
              dev.herald.v1.PublishResponse>(
                service, METHODID_PUBLISH)))
        .addMethod(
          getPublishBatchMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.herald.v1.PublishBatchRequest,
              dev.herald.v1.PublishBatchResponse>(
                service, METHODID_PUBLISH_BATCH)))
        .addMethod(
          getRegisterEndpointMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.herald.v1.RegisterEndpointRequest,
              dev.herald.v1.RegisterEndpointResponse>(
                service, METHODID_REGISTER_ENDPOINT)))
        .addMethod(
          getGetEndpointMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.herald.v1.GetEndpointRequest,
              dev.herald.v1.GetEndpointResponse>(
                service, METHODID_GET_ENDPOINT)))
        .addMethod(
          getListEndpointsMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.herald.v1.ListEndpointsRequest,
              dev.herald.v1.ListEndpointsResponse>(
                service, METHODID_LIST_ENDPOINTS)))
        .addMethod(
          getUpdateEndpointMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.herald.v1.UpdateEndpointRequest,
              dev.herald.v1.UpdateEndpointResponse>(
                service, METHODID_UPDATE_ENDPOINT)))
        .addMethod(
          getDeleteEndpointMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.herald.v1.DeleteEndpointRequest,
              dev.herald.v1.DeleteEndpointResponse>(
                service, METHODID_DELETE_ENDPOINT)))
        .addMethod(
          getRotateEndpointSecretMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.herald.v1.RotateEndpointSecretRequest,
              dev.herald.v1.RotateEndpointSecretResponse>(
                service, METHODID_ROTATE_ENDPOINT_SECRET)))
        .addMethod(
          getGetMessageMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.herald.v1.GetMessageRequest,
              dev.herald.v1.GetMessageResponse>(
                service, METHODID_GET_MESSAGE)))
        .addMethod(
          getListAttemptsMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.herald.v1.ListAttemptsRequest,
              dev.herald.v1.ListAttemptsResponse>(
                service, METHODID_LIST_ATTEMPTS)))
        .addMethod(
          getRetryDeliveryMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.herald.v1.RetryDeliveryRequest,
              dev.herald.v1.RetryDeliveryResponse>(
                service, METHODID_RETRY_DELIVERY)))
        .addMethod(
          getReplayMessageMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.herald.v1.ReplayMessageRequest,
              dev.herald.v1.ReplayMessageResponse>(
                service, METHODID_REPLAY_MESSAGE)))
        .addMethod(
          getExpungeMessageMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.herald.v1.ExpungeMessageRequest,
              dev.herald.v1.ExpungeMessageResponse>(
                service, METHODID_EXPUNGE_MESSAGE)))
        .addMethod(
          getRecoverEndpointMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.herald.v1.RecoverEndpointRequest,
              dev.herald.v1.RecoverEndpointResponse>(
                service, METHODID_RECOVER_ENDPOINT)))
        .addMethod(
          getStreamDeliveryStatusMethod(),
          io.grpc.stub.ServerCalls.asyncServerStreamingCall(
            new MethodHandlers<
              dev.herald.v1.StreamDeliveryStatusRequest,
              dev.herald.v1.StreamDeliveryStatusResponse>(
                service, METHODID_STREAM_DELIVERY_STATUS)))
        .addMethod(
          getGetAnalyticsMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.herald.v1.GetAnalyticsRequest,
              dev.herald.v1.GetAnalyticsResponse>(
                service, METHODID_GET_ANALYTICS)))
        .addMethod(
          getGetHealthMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.herald.v1.GetHealthRequest,
              dev.herald.v1.GetHealthResponse>(
                service, METHODID_GET_HEALTH)))
        .addMethod(
          getCreateApiKeyMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.herald.v1.CreateApiKeyRequest,
              dev.herald.v1.CreateApiKeyResponse>(
                service, METHODID_CREATE_API_KEY)))
        .addMethod(
          getListApiKeysMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.herald.v1.ListApiKeysRequest,
              dev.herald.v1.ListApiKeysResponse>(
                service, METHODID_LIST_API_KEYS)))
        .addMethod(
          getRevokeApiKeyMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.herald.v1.RevokeApiKeyRequest,
              dev.herald.v1.RevokeApiKeyResponse>(
                service, METHODID_REVOKE_API_KEY)))
        .addMethod(
          getListTenantsMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.herald.v1.ListTenantsRequest,
              dev.herald.v1.ListTenantsResponse>(
                service, METHODID_LIST_TENANTS)))
        .addMethod(
          getDeleteTenantMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.herald.v1.DeleteTenantRequest,
              dev.herald.v1.DeleteTenantResponse>(
                service, METHODID_DELETE_TENANT)))
        .build();
  }

  private static abstract class WebhookServiceBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoFileDescriptorSupplier, io.grpc.protobuf.ProtoServiceDescriptorSupplier {
    WebhookServiceBaseDescriptorSupplier() {}

    @java.lang.Override
    public com.google.protobuf.Descriptors.FileDescriptor getFileDescriptor() {
      return dev.herald.v1.Herald.getDescriptor();
    }

    @java.lang.Override
    public com.google.protobuf.Descriptors.ServiceDescriptor getServiceDescriptor() {
      return getFileDescriptor().findServiceByName("WebhookService");
    }
  }

  private static final class WebhookServiceFileDescriptorSupplier
      extends WebhookServiceBaseDescriptorSupplier {
    WebhookServiceFileDescriptorSupplier() {}
  }

  private static final class WebhookServiceMethodDescriptorSupplier
      extends WebhookServiceBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoMethodDescriptorSupplier {
    private final java.lang.String methodName;

    WebhookServiceMethodDescriptorSupplier(java.lang.String methodName) {
      this.methodName = methodName;
    }

    @java.lang.Override
    public com.google.protobuf.Descriptors.MethodDescriptor getMethodDescriptor() {
      return getServiceDescriptor().findMethodByName(methodName);
    }
  }

  private static volatile io.grpc.ServiceDescriptor serviceDescriptor;

  public static io.grpc.ServiceDescriptor getServiceDescriptor() {
    io.grpc.ServiceDescriptor result = serviceDescriptor;
    if (result == null) {
      synchronized (WebhookServiceGrpc.class) {
        result = serviceDescriptor;
        if (result == null) {
          serviceDescriptor = result = io.grpc.ServiceDescriptor.newBuilder(SERVICE_NAME)
              .setSchemaDescriptor(new WebhookServiceFileDescriptorSupplier())
              .addMethod(getPublishMethod())
              .addMethod(getPublishBatchMethod())
              .addMethod(getRegisterEndpointMethod())
              .addMethod(getGetEndpointMethod())
              .addMethod(getListEndpointsMethod())
              .addMethod(getUpdateEndpointMethod())
              .addMethod(getDeleteEndpointMethod())
              .addMethod(getRotateEndpointSecretMethod())
              .addMethod(getGetMessageMethod())
              .addMethod(getListAttemptsMethod())
              .addMethod(getRetryDeliveryMethod())
              .addMethod(getReplayMessageMethod())
              .addMethod(getExpungeMessageMethod())
              .addMethod(getRecoverEndpointMethod())
              .addMethod(getStreamDeliveryStatusMethod())
              .addMethod(getGetAnalyticsMethod())
              .addMethod(getGetHealthMethod())
              .addMethod(getCreateApiKeyMethod())
              .addMethod(getListApiKeysMethod())
              .addMethod(getRevokeApiKeyMethod())
              .addMethod(getListTenantsMethod())
              .addMethod(getDeleteTenantMethod())
              .build();
        }
      }
    }
    return result;
  }
}
